package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child process of the suite: in its own process group (so that
// stopping it reaches anything it started) and killed by the kernel should
// the test binary die without cleaning up (Pdeathsig).
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// startProcess runs bin with args and exactly the environment env (nothing
// is inherited, so a DATABASE_URL of the developer's shell cannot leak in),
// stdout and stderr appended to logPath.
func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	// The child holds its own copy of the descriptor; ours is not needed.
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitDescription says how the process ended, for failure messages.
func (p *process) exitDescription() string {
	if !p.exited() {
		return p.name + " is running"
	}
	return fmt.Sprintf("%s exited: %v (log %s)", p.name, p.waitErr, p.logPath)
}

// log returns everything the process has written so far.
func (p *process) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	return string(b)
}

// logTail returns the last n lines of the process's output.
func (p *process) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM to the process group, waits up to timeout for the
// process to exit, and SIGKILLs the group if it does not. It returns the exit
// code (-1 when killed by a signal), and an error when the process had to be
// killed or a member of its group outlived it.
func (p *process) stop(timeout time.Duration) (int, error) {
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	var errs []error
	if !p.exited() {
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signalling %s: %w", p.name, err))
		}
		timer := time.NewTimer(timeout)
		select {
		case <-p.done:
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			errs = append(errs, fmt.Errorf("%s did not exit within %s of SIGTERM; killed it", p.name, timeout))
		}
		timer.Stop()
	}
	// Nothing of the group may outlive its leader.
	if err := syscall.Kill(-pgid, 0); err == nil {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		errs = append(errs, fmt.Errorf("a process of %s's group outlived it; killed the group", p.name))
	}
	return p.cmd.ProcessState.ExitCode(), errors.Join(errs...)
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
