package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/darse/darse/internal/backup"
)

// backupBench backs up N site folders (DARSE_BENCH_BACKUP_SITES, default
// 100) to a local restic repository with darse's backup service, one site
// after the other as the schedule runs them, twice (the second after a
// small change to every site: incremental), and restores one; beside it
// `tar czf` of each folder (the full copy every run that peers make) and
// `tar xzf` of one. Time and bytes stored, with their ratios.
//
// Each folder is what a CMS site looks like: the same 2 MiB of code in
// every site (restic stores it once), 40 small pages and 256 KiB of the
// site's own uploads (random, incompressible).
func backupBench(ctx context.Context, o options) error {
	sites := 100
	if v := os.Getenv("DARSE_BENCH_BACKUP_SITES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("DARSE_BENCH_BACKUP_SITES=%q: want a positive number", v)
		}
		sites = n
	}
	bin, err := backup.FindRestic()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "darse-bench-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	users := filepath.Join(dir, "users")
	names, err := benchSites(users, sites)
	if err != nil {
		return err
	}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("bench\n"), 0o600); err != nil {
		return err
	}
	repo := filepath.Join(dir, "repo")
	svc := &backup.Service{Restic: &backup.Restic{Binary: bin, Repository: repo, PasswordFile: pw, CacheDir: filepath.Join(dir, "cache")},
		Host: "bench", MetaDir: filepath.Join(dir, "meta")}
	tars := filepath.Join(dir, "tar")
	src, _ := dirSize(users)
	fmt.Printf("%d sites, %.1f MiB of folders\n", sites, mib(src))

	var rows [2]struct{ restic, tar time.Duration }
	var stored [2]struct{ restic, tar int64 }
	for pass := range 2 {
		if pass == 1 {
			if err := touchSites(users, names); err != nil {
				return err
			}
		}
		t0 := time.Now()
		for _, n := range names {
			rec, _ := json.Marshal(map[string]string{"name": n})
			if _, err := svc.BackupSite(ctx, backup.Site{Name: n, Dir: filepath.Join(users, n), Record: rec}, fmt.Sprintf("bench%d", pass)); err != nil {
				return err
			}
		}
		rows[pass].restic = time.Since(t0)
		stored[pass].restic, _ = dirSize(repo)

		out := filepath.Join(tars, strconv.Itoa(pass))
		if err := os.MkdirAll(out, 0o700); err != nil {
			return err
		}
		t0 = time.Now()
		for _, n := range names {
			if b, err := exec.CommandContext(ctx, "tar", "czf", filepath.Join(out, n+".tar.gz"), "-C", users, n).CombinedOutput(); err != nil {
				return fmt.Errorf("tar czf %s: %v %s", n, err, b)
			}
		}
		rows[pass].tar = time.Since(t0)
		stored[pass].tar, _ = dirSize(tars)
	}

	one := names[len(names)/2]
	set, err := svc.Find(ctx, one, "bench1")
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := svc.RestoreFiles(ctx, set, filepath.Join(dir, "restored-restic")); err != nil {
		return err
	}
	restoreRestic := time.Since(t0)
	if err := os.MkdirAll(filepath.Join(dir, "restored-tar"), 0o700); err != nil {
		return err
	}
	t0 = time.Now()
	if b, err := exec.CommandContext(ctx, "tar", "xzf", filepath.Join(tars, "1", one+".tar.gz"), "-C", filepath.Join(dir, "restored-tar")).CombinedOutput(); err != nil {
		return fmt.Errorf("tar xzf: %v %s", err, b)
	}
	restoreTar := time.Since(t0)

	fmt.Printf("%-28s %12s %12s %8s   %12s %12s %8s\n", "", "darse time", "tar time", "ratio", "darse MiB", "tar MiB", "ratio")
	for i, what := range []string{"first backup (all sites)", "second backup (incremental)"} {
		dr, dt := stored[i].restic, stored[i].tar
		if i == 1 { // what the second run added
			dr, dt = stored[1].restic-stored[0].restic, stored[1].tar-stored[0].tar
		}
		fmt.Printf("%-28s %11.2fs %11.2fs %8.2f   %12.1f %12.1f %8.3f\n", what, rows[i].restic.Seconds(), rows[i].tar.Seconds(),
			rows[i].restic.Seconds()/rows[i].tar.Seconds(), mib(dr), mib(dt), float64(dr)/float64(dt))
	}
	fmt.Printf("%-28s %12s %12s %8s   %12.1f %12.1f %8.3f\n", "stored after both", "", "", "",
		mib(stored[1].restic), mib(stored[1].tar), float64(stored[1].restic)/float64(stored[1].tar))
	fmt.Printf("%-28s %11.3fs %11.3fs %8.2f\n", "restore of one site", restoreRestic.Seconds(), restoreTar.Seconds(), restoreRestic.Seconds()/restoreTar.Seconds())
	return nil
}

// benchSites writes n site folders under users and returns their names.
func benchSites(users string, n int) ([]string, error) {
	code := make([]byte, 2<<20) // the CMS, the same in every site
	rand.Read(code)
	var names []string
	for i := range n {
		name := fmt.Sprintf("bench%03d", i)
		d := filepath.Join(users, name)
		files := map[string][]byte{
			"docker-compose.yml":  []byte("services: {}\n"),
			".env":                []byte("SITE=" + name + "\n"),
			"data/code/cms.php":   code,
			"data/uploads/photos": randomBytes(256 << 10),
		}
		for p := range 40 {
			files[fmt.Sprintf("data/page%02d.html", p)] = fmt.Appendf(nil, "<h1>%s page %d</h1>\n%s\n", name, p, lorem)
		}
		for p, b := range files {
			path := filepath.Join(d, p)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return nil, err
			}
		}
		names = append(names, name)
	}
	return names, nil
}

// touchSites changes one page and adds one small upload in every site.
func touchSites(users string, names []string) error {
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(users, n, "data", "page00.html"), []byte("<h1>edited</h1>\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(users, n, "data", "uploads", "new"), randomBytes(16<<10), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// dirSize is the bytes the files under dir hold.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

const lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " +
	"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."
