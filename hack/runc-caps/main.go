// Command runc-caps is an OCI runtime that runs runc with only the capabilities
// the host can grant. Registered as the default runtime of a Docker engine (and
// of containerd inside kind's nodes), it makes `docker run --privileged` work on
// hosts whose capability bounding set lacks some capability: Docker and
// containerd ask for every capability they know for a privileged container, and
// runc fails with "unable to apply caps: operation not permitted" when one is
// outside the bounding set. kind starts every node --privileged, and kube-proxy
// runs privileged in the node.
//
// It changes nothing else: for `create` and `run` it removes the missing
// capabilities from the bundle's config.json, for `exec` from the --process
// file, then replaces itself with the real runc, which keeps every flag.
// Without CAP_SYS_RESOURCE a process may not lower its oom_score_adj either,
// and runc's init dies trying ("failed to update /proc/self/oom_score_adj:
// Permission denied"; kubelet gives system pods -998): then a spec's
// oomScoreAdj below this runtime's own is raised to it.
//
// hack/docker.sh installs it only on hosts that need it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames are Linux's capability numbers and names (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// realRuncs are where the real runc may be, in order.
var realRuncs = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"}

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "runc-caps:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 5 && args[1] == "--register-in" {
		return register(args[2], args[3], args[4])
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	allowed, err := boundingSet(string(status))
	if err != nil {
		return err
	}
	if file := specToEdit(args[1:]); file != "" {
		if err := fitHost(file, allowed, ownOOMScoreAdj()); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	runc, err := realRunc()
	if err != nil {
		return err
	}
	return syscall.Exec(runc, append([]string{"runc"}, args[1:]...), os.Environ())
}

// boundingSet reads the capability names of CapBnd in /proc/self/status.
func boundingSet(status string) (map[string]bool, error) {
	for _, line := range strings.Split(status, "\n") {
		hex, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		bits, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("CapBnd %q: %w", hex, err)
		}
		set := map[string]bool{}
		for i, name := range capNames {
			if bits&(1<<i) != 0 {
				set[name] = true
			}
		}
		return set, nil
	}
	return nil, errors.New("no CapBnd line in /proc/self/status")
}

// specToEdit finds the JSON file a runc command line hands runc: the bundle's
// config.json for create and run, the --process file for exec. Global flags
// come before the command; runc's flags take their values as the next
// argument or after "=".
func specToEdit(args []string) string {
	cmd, rest := "", []string(nil)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			cmd, rest = a, args[i+1:]
			break
		}
		if !strings.Contains(a, "=") && globalTakesValue(a) {
			i++
		}
	}
	value := func(names ...string) (string, bool) {
		for i, a := range rest {
			for _, n := range names {
				if a == n && i+1 < len(rest) {
					return rest[i+1], true
				}
				if v, ok := strings.CutPrefix(a, n+"="); ok {
					return v, true
				}
			}
		}
		return "", false
	}
	switch cmd {
	case "create", "run":
		bundle, ok := value("--bundle", "-b")
		if !ok {
			bundle = "."
		}
		return filepath.Join(bundle, "config.json")
	case "exec":
		if p, ok := value("--process", "-p"); ok {
			return p
		}
	}
	return ""
}

// globalTakesValue reports whether a runc global flag takes a value.
func globalTakesValue(flag string) bool {
	switch strings.TrimLeft(flag, "-") {
	case "root", "log", "log-format", "criu", "rootless":
		return true
	}
	return false
}

// ownOOMScoreAdj is this process's oom_score_adj (0 when it cannot be read).
func ownOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// fitHost removes from the spec's capability sets every capability outside
// allowed and, without CAP_SYS_RESOURCE, raises an oomScoreAdj below minOOM to
// it. The file is either a whole runtime spec (process.capabilities) or a
// process (capabilities).
func fitHost(file string, allowed map[string]bool, minOOM int) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	proc := doc
	if p, ok := doc["process"].(map[string]any); ok {
		proc = p
	}
	changed := false
	if adj, ok := proc["oomScoreAdj"].(float64); ok && !allowed["CAP_SYS_RESOURCE"] && int(adj) < minOOM {
		proc["oomScoreAdj"] = minOOM
		changed = true
	}
	caps, _ := proc["capabilities"].(map[string]any)
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := list[:0:0]
		for _, c := range list {
			if name, ok := c.(string); ok && !allowed[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o644)
}

// register makes path the default runtime, under name, of the Docker engine
// configured by daemonJSON (hack/docker.sh runs `runc-caps --register-in
// /etc/docker/daemon.json NAME PATH`), keeping every other setting in it.
func register(daemonJSON, name, path string) error {
	doc := map[string]any{}
	if data, err := os.ReadFile(daemonJSON); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %w", daemonJSON, err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	runtimes, _ := doc["runtimes"].(map[string]any)
	if runtimes == nil {
		runtimes = map[string]any{}
	}
	runtimes[name] = map[string]any{"path": path}
	doc["runtimes"] = runtimes
	doc["default-runtime"] = name
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(daemonJSON), 0o755); err != nil {
		return err
	}
	return os.WriteFile(daemonJSON, append(out, '\n'), 0o644)
}

func realRunc() (string, error) {
	self, _ := os.Executable()
	for _, p := range realRuncs {
		if p == self {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("runc not found in %s", strings.Join(realRuncs, ", "))
}
