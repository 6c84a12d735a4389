package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one control-plane child: its command, where its output goes, and
// a channel closed when it has exited.
type process struct {
	name    string // "etcd", "kube-apiserver", …
	cluster string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{}
	waitErr error // valid once done is closed
}

// spawner starts every child from one OS thread that never exits.
// SysProcAttr.Pdeathsig is delivered when the thread that forked the child
// dies, not the process (prctl(2) PR_SET_PDEATHSIG; Go issue 27505): were a
// child forked from a thread the Go runtime later retires, the kernel would
// kill the child early. A goroutine locked to its thread for the life of the
// program keeps that thread, so the signal comes only when drill itself dies.
var spawner = struct {
	once sync.Once
	reqs chan spawnRequest
}{reqs: make(chan spawnRequest)}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		// This goroutine lives as long as the program, on purpose (see above).
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

// startProcess runs bin with args in dir, output appended to logPath. The
// child gets its own process group (so a stop reaches anything it forks) and
// SIGKILL if drill dies, so it never outlives the run.
func startProcess(cluster, name, logPath, dir string, env []string, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: open %s log: %w", cluster, name, err)
	}
	// The command line heads the log: the first thing to read when a process
	// misbehaves.
	fmt.Fprintf(logf, "# %s %s\n", bin, strings.Join(args, " "))
	for _, e := range env {
		fmt.Fprintf(logf, "# env %s\n", e)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cluster %s: start %s (%s): %w", cluster, name, bin, err)
	}
	p := &process{name: name, cluster: cluster, logPath: logPath, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the child's process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, waits up to grace (or
// until ctx ends) for it to exit, then sends SIGKILL. It returns an error only
// when the process could not be made to exit.
func (p *process) stop(ctx context.Context, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	// SIGKILL cannot be ignored; a process that still has not gone after this
	// is stuck in the kernel, which is worth reporting rather than hanging on.
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster %s: %s (pid %d) did not exit after SIGKILL", p.cluster, p.name, pgid)
	}
}

// failed builds the error for a process that did not come up: what went
// wrong, and the end of its log, which usually says why.
func (p *process) failed(cause error, format string, args ...any) *StartError {
	msg := fmt.Sprintf(format, args...)
	if p.exited() {
		msg = fmt.Sprintf("%s (it exited: %v)", msg, p.waitErr)
	}
	return &StartError{Cluster: p.cluster, Process: p.name, LogPath: p.logPath, LogTail: tailFile(p.logPath, 25), msg: msg, err: cause}
}

// StartError says which process of which cluster failed to start, and
// carries the end of its log.
type StartError struct {
	Cluster string
	Process string
	LogPath string
	LogTail string
	msg     string
	err     error
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %s: %s", e.Cluster, e.Process, e.msg)
	if e.err != nil {
		fmt.Fprintf(&b, ": %v", e.err)
	}
	fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", e.LogPath, e.LogTail)
	return b.String()
}

func (e *StartError) Unwrap() error { return e.err }

// tailFile returns the last n lines of the file at path (at most 16 KiB).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const maxTail = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		if _, err := f.Seek(-maxTail, io.SeekEnd); err != nil {
			return fmt.Sprintf("(cannot read log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitReady polls check every interval until it succeeds, the process exits,
// timeout passes or ctx ends, and says which in its error.
func (p *process) waitReady(parent context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.failed(nil, "exited before %s", what)
		case <-ctx.Done():
			if parent.Err() != nil {
				return p.failed(context.Cause(parent), "start abandoned while waiting for %s", what)
			}
			return p.failed(last, "%s not reached within %s", what, timeout)
		case <-tick.C:
		}
	}
}
