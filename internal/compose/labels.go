package compose

// The labels docker compose puts on what it creates. darse sets the same ones
// so that `docker-compose ps|logs|down` in a site folder act on darse's
// containers and darse recognises projects an operator brought up by hand.
const (
	// LabelProject is the compose project name (the site name for sites).
	LabelProject = "com.docker.compose.project"
	// LabelService is the service a container belongs to.
	LabelService = "com.docker.compose.service"
	// LabelNumber is the container's index within its service, from 1.
	LabelNumber = "com.docker.compose.container-number"
	// LabelOneOff is "True" for `docker-compose run` containers, which darse ignores.
	LabelOneOff = "com.docker.compose.oneoff"
	// LabelConfigHash is the hash of the service's configuration; a
	// container whose hash differs from the project's is recreated.
	LabelConfigHash = "com.docker.compose.config-hash"
	// LabelWorkingDir is the project folder.
	LabelWorkingDir = "com.docker.compose.project.working_dir"
	// LabelConfigFiles lists the compose files, comma-separated.
	LabelConfigFiles = "com.docker.compose.project.config_files"
	// LabelEnvironmentFile names the .env used for interpolation.
	LabelEnvironmentFile = "com.docker.compose.project.environment_file"
	// LabelVersion is the compose version whose label schema is followed:
	// Debian's docker-compose, the operators' CLI.
	LabelVersion = "com.docker.compose.version"
	// LabelNetwork is the network's key in the compose file.
	LabelNetwork = "com.docker.compose.network"
	// LabelVolume is the volume's key in the compose file.
	LabelVolume = "com.docker.compose.volume"

	// Version is the value darse writes in LabelVersion.
	Version = "1.29.2"
)
