<?php
/*
 * darse: the configuration of the one WordPress site this container serves,
 * read by Debian's /usr/share/wordpress/wp-config.php. Everything specific
 * to the site comes from the environment its compose project gives php-fpm
 * (the pool passes these variables through): the database and its password
 * from the site's .env, never from a file the member can read.
 */
define('DB_NAME', getenv('WORDPRESS_DB_NAME'));
define('DB_USER', getenv('WORDPRESS_DB_USER'));
define('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD'));
define('DB_HOST', getenv('WORDPRESS_DB_HOST'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');

// The eight keys and salts, each derived from the site's one random secret.
foreach (array('AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
               'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT') as $darse_key) {
    define($darse_key, hash_hmac('sha256', $darse_key, (string) getenv('WORDPRESS_SALT')));
}
unset($darse_key);

// Uploads, themes and plugins are the member's files (data/, over SFTP
// and upload); WordPress itself is the image's, updated with it.
define('WP_CONTENT_DIR', '/srv/data/wp-content');
define('WPMU_PLUGIN_DIR', '/usr/share/wordpress/darse-mu-plugins');
define('WP_DEFAULT_THEME', 'twentytwentythree');
define('FS_METHOD', 'direct');
define('WP_AUTO_UPDATE_CORE', false);
