// Package envtest is flightdeck's test environment: a real, throwaway
// PostgreSQL cluster per test binary, with an isolated, migrated database per
// suite (cloned from a migrated template, which takes milliseconds).
//
// A suite starts the cluster in BeforeSuite and stops it with DeferCleanup,
// which ginkgo also runs when a spec fails or the run is interrupted (^C):
//
//	var pg *envtest.Postgres
//
//	var _ = BeforeSuite(func(ctx SpecContext) {
//		var err error
//		pg, err = envtest.StartPostgres(ctx)
//		Expect(err).NotTo(HaveOccurred())
//		DeferCleanup(pg.Stop)
//		databaseURL, err = pg.NewDatabase(ctx, "mysuite")
//		Expect(err).NotTo(HaveOccurred())
//	})
//
// Should the test process die without running its cleanups (SIGKILL, a
// panic in a goroutine), the kernel kills the postmaster (Pdeathsig) and its
// backends follow; only the temporary directory (flightdeck-pg-* in
// os.TempDir) stays behind.
//
// The cluster's data directory is a copy of one initdb result cached in
// os.TempDir (flightdeck-envtest-cache-<uid>), so only the first test binary
// on a machine pays for initdb. The cluster runs initdb and postgres found on PATH or in
// /usr/lib/postgresql/*/bin (the newest version), listens on a free loopback
// port and on a unix socket in its temporary directory, trusts every local
// connection, and trades durability for speed (fsync, synchronous_commit and
// full_page_writes off). PostgreSQL refuses to run as root, so when the test
// process is root the cluster runs as the unprivileged postgres account that
// the PostgreSQL packages create.
package envtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flightdeck/flightdeck/store"
)

// ErrNotInstalled is returned by StartPostgres when no PostgreSQL server
// binaries are found.
var ErrNotInstalled = errors.New("PostgreSQL not found (looked for initdb on PATH and in /usr/lib/postgresql/*/bin); run hack/install-prereqs.sh")

// searchGlob is where the Debian/Ubuntu packages install the server binaries.
var searchGlob = "/usr/lib/postgresql/*/bin"

// templateName is the migrated database NewDatabase clones.
const templateName = "flightdeck_template"

// Timeouts of the cluster's life cycle.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Postgres is a running throwaway cluster. Its methods are safe for
// concurrent use.
type Postgres struct {
	binDir  string
	dir     string // temporary root: data directory, socket, log
	dataDir string
	logPath string
	port    int
	cred    *syscall.Credential // nil when not root

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	stopped  bool
	template bool // the template database exists
}

// StartPostgres creates and starts a cluster; ctx bounds the start only. When
// it fails it leaves nothing behind; otherwise call Stop when done, in a
// DeferCleanup (see the package documentation).
func StartPostgres(ctx context.Context) (*Postgres, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	p := &Postgres{binDir: binDir}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		p.cred = cred
	}
	if p.dir, err = os.MkdirTemp("", "flightdeck-pg-"); err != nil {
		return nil, fmt.Errorf("creating cluster directory: %w", err)
	}
	p.dataDir = filepath.Join(p.dir, "data")
	p.logPath = filepath.Join(p.dir, "postgres.log")
	ok := false
	defer func() {
		if !ok {
			_ = p.Stop()
		}
	}()
	if p.cred != nil {
		if err := os.Chown(p.dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing cluster directory to the postgres user: %w", err)
		}
	}
	if err := p.createDataDir(ctx); err != nil {
		return nil, err
	}
	// Another process may take the free port between our check and the bind;
	// try a few ports.
	for attempt := 0; ; attempt++ {
		if p.port, err = freePort(); err != nil {
			return nil, err
		}
		err = p.start(ctx)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// findBinDir returns the directory holding initdb and postgres.
func findBinDir() (string, error) {
	var candidates []string
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
		candidates = append(candidates, filepath.Dir(initdb))
	}
	dirs, _ := filepath.Glob(searchGlob)
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	candidates = append(candidates, dirs...)
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

// versionOf reads the major version out of /usr/lib/postgresql/<v>/bin.
func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// postgresCredential is the postgres account's uid and gid.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: need the postgres user (%w); run hack/install-prereqs.sh", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid of the postgres user: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of the postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command prepares a server binary to run as the cluster's user, in its own
// process group, killed when the test process dies.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.binDir, name), args...)
	cmd.Dir = p.dir
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC", "PATH=" + p.binDir + ":/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	return cmd
}

// createDataDir fills p.dataDir with a fresh cluster: a copy of a cached
// initdb result (initdb's bootstrap costs seconds of CPU, a copy a fraction
// of one), made on first use by any test binary.
func (p *Postgres) createDataDir(ctx context.Context) error {
	cached, err := p.cachedInitdb(ctx)
	if err != nil {
		return err
	}
	if err := copyTree(cached, p.dataDir, p.cred); err != nil {
		return fmt.Errorf("copying cached cluster: %w", err)
	}
	return nil
}

// cachedInitdb returns the directory of an initdb result for this
// PostgreSQL installation, creating it if needed. Concurrent test binaries
// may race to create it; the first rename wins and the others use it.
func (p *Postgres) cachedInitdb(ctx context.Context) (string, error) {
	fi, err := os.Stat(filepath.Join(p.binDir, "postgres"))
	if err != nil {
		return "", fmt.Errorf("inspecting postgres binary: %w", err)
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d", p.binDir, fi.Size(), fi.ModTime().UnixNano()))))[:16]
	root := filepath.Join(os.TempDir(), fmt.Sprintf("flightdeck-envtest-cache-%d", os.Geteuid()))
	final := filepath.Join(root, "initdb-"+key)
	if _, err := os.Stat(filepath.Join(final, "PG_VERSION")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	work, err := os.MkdirTemp(root, "tmp-")
	if err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	defer os.RemoveAll(work)
	if p.cred != nil {
		if err := os.Chown(work, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return "", fmt.Errorf("handing cache directory to the postgres user: %w", err)
		}
	}
	data := filepath.Join(work, "data")
	if err := p.initdb(ctx, data); err != nil {
		return "", err
	}
	if err := os.Rename(data, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, "PG_VERSION")); statErr == nil {
			return final, nil // another test binary was faster
		}
		return "", fmt.Errorf("storing cached cluster: %w", err)
	}
	return final, nil
}

// copyTree copies the directory src to dst (regular files and directories
// only, as in a fresh data directory), owned by cred when it is set.
func copyTree(src, dst string, cred *syscall.Credential) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is neither a file nor a directory", path)
		}
		if cred != nil {
			return os.Lchown(target, int(cred.Uid), int(cred.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (p *Postgres) initdb(ctx context.Context, dataDir string) error {
	cmd := p.command("initdb", "-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running initdb: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("running initdb: %w: %s", err, tail(out.String()))
		}
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("running initdb: %w", ctx.Err())
	}
}

// start runs postgres on p.port and waits until it accepts connections.
func (p *Postgres) start(ctx context.Context) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening cluster log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	logStart, _ := logFile.Seek(0, 2)
	cmd := p.command("postgres",
		"-D", p.dataDir,
		"-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+p.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "timezone=UTC",
		"-c", "log_min_messages=warning",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	if err := p.waitReady(ctx, exited); err != nil {
		p.mu.Lock()
		p.kill()
		p.mu.Unlock()
		return fmt.Errorf("starting postgres on port %d: %w: %s", p.port, err, tail(p.logSince(logStart)))
	}
	return nil
}

// waitReady polls until the server accepts a connection.
func (p *Postgres) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.AdminURL())
		ccancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (p *Postgres) logSince(offset int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// tail returns the last lines of a log, for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is the TCP port the cluster listens on (on 127.0.0.1).
func (p *Postgres) Port() int { return p.port }

// AdminURL is the URL of the postgres database as the superuser postgres.
func (p *Postgres) AdminURL() string { return p.url("postgres") }

func (p *Postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

var dbNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NewDatabase creates the database name, migrated with flightdeck's
// migrations (cloned from a template migrated on first use), and returns its
// URL. Names are lower-case identifiers, unique within the cluster.
func (p *Postgres) NewDatabase(ctx context.Context, name string) (string, error) {
	if err := p.ensureTemplate(ctx); err != nil {
		return "", err
	}
	return p.createDatabase(ctx, name, templateName)
}

// NewEmptyDatabase creates the database name without any schema (for
// testing migrations) and returns its URL.
func (p *Postgres) NewEmptyDatabase(ctx context.Context, name string) (string, error) {
	return p.createDatabase(ctx, name, "template0")
}

func (p *Postgres) createDatabase(ctx context.Context, name, template string) (string, error) {
	if !dbNamePattern.MatchString(name) || name == templateName {
		return "", fmt.Errorf("database name %q is not a lower-case identifier of at most 63 characters (or is reserved)", name)
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	// A template may not have other sessions; the last one of the migration
	// can take a moment to go away.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := p.adminExec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil {
			return p.url(name), nil
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			return "", fmt.Errorf("creating database %s: %w", name, err)
		}
		if _, err := p.TerminateBackends(ctx, template); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("creating database %s: %w", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ensureTemplate creates and migrates the template database once.
func (p *Postgres) ensureTemplate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.template {
		return nil
	}
	if err := p.adminExec(ctx, "CREATE DATABASE "+templateName); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	if _, err := store.Migrate(ctx, p.url(templateName)); err != nil {
		return fmt.Errorf("migrating template database: %w", err)
	}
	// Nobody connects to the template any more; cloning needs that.
	if err := p.adminExec(ctx, "ALTER DATABASE "+templateName+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("sealing template database: %w", err)
	}
	p.template = true
	return nil
}

// TerminateBackends ends every session connected to the database dbname
// (like an administrator or a failover would) and returns how many it ended.
func (p *Postgres) TerminateBackends(ctx context.Context, dbname string) (int, error) {
	conn, err := pgx.Connect(ctx, p.AdminURL())
	if err != nil {
		return 0, fmt.Errorf("connecting to the cluster: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		 WHERE datname = $1 AND pid <> pg_backend_pid()`, dbname).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("terminating sessions of database %s: %w", dbname, err)
	}
	return n, nil
}

func (p *Postgres) adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.AdminURL())
	if err != nil {
		return fmt.Errorf("connecting to the cluster: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// Restart stops the server and starts it again on the same port and data
// directory, keeping every database. Connections are cut meanwhile, as in a
// database restart or failover.
func (p *Postgres) Restart(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return errors.New("restarting postgres: the cluster is stopped")
	}
	err := p.shutdown(syscall.SIGINT)
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	return p.start(ctx)
}

// Stop shuts the server down and removes its directory. It is idempotent.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	// The data goes away with the directory: an immediate shutdown skips
	// the shutdown checkpoint.
	err := p.shutdown(syscall.SIGQUIT)
	if p.dir != "" {
		if rmErr := os.RemoveAll(p.dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("removing cluster directory: %w", rmErr))
		}
	}
	return err
}

// shutdown sends the postmaster sig (SIGINT: fast shutdown, SIGQUIT:
// immediate shutdown) and kills the process group if it does not finish in
// time. p.mu must be held.
func (p *Postgres) shutdown(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.exited:
		p.cmd = nil
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		p.kill()
		return fmt.Errorf("postgres did not stop within %s; killed it", stopTimeout)
	}
	p.cmd = nil
	return nil
}

// kill SIGKILLs the process group and waits for the postmaster. p.mu must be
// held.
func (p *Postgres) kill() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}
