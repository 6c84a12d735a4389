package fault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/meshdrill/drill/pkg/event"
)

// KindPartition is the Kind of a Partition.
const KindPartition = "partition"

// Network is a cluster's network as a partition cuts it: the addresses its
// pods, gateways and nodes use as the other clusters see them, and the packet
// filters that see its traffic. The local provider's clusters share the
// host's filter; a kind cluster's are its node containers'.
type Network interface {
	NetworkRanges() []netip.Prefix
	PacketFilters() []PacketFilter
}

// PacketFilter is one netfilter instance drill can add iptables rules to.
type PacketFilter struct {
	// Name identifies the filter in messages; clusters that share a filter
	// (the local provider's, on one host) give the same name, and a
	// partition's rules go into it once.
	Name string
	// Command runs iptables there: {"iptables"} on the host, {"docker",
	// "exec", NODE, "iptables"} in a kind node.
	Command []string
	// Restore, when set, runs iptables-restore there reading its standard
	// input: {"iptables-restore"}, {"docker", "exec", "-i", NODE,
	// "iptables-restore"}. A partition's rules then go in as one atomic batch
	// (one process, not one per rule: hundreds of rules between two kind
	// clusters would take a minute through docker exec).
	Restore []string
}

// HostFilter is this host's own netfilter, where the local provider's
// clusters' rules go and where `drill clean` looks for leftovers.
var HostFilter = PacketFilter{Name: "this host", Command: []string{"iptables"}, Restore: []string{"iptables-restore"}}

// Partition cuts the network between a cluster and its peers with iptables
// rules that drop the packets, as a broken link or a firewall does: no reset
// comes back, so connections time out (Envoy's connect_timeout, then UF)
// rather than being refused. Both ways by default; one way cuts only the
// connections the cluster opens to its peers (conntrack state NEW), theirs to
// it still work.
//
// The rules live in a chain of their own, jumped to from INPUT and FORWARD
// of every filter of the clusters on both sides: INPUT sees what reaches a
// host's own sockets (the local provider's loopback addresses, a node's
// address), FORWARD what a node routes for its pods. OUTPUT is left alone:
// a packet dropped there fails the sender's connect at once with EPERM,
// which no real partition does. Revert deletes the chain and its jumps.
type Partition struct {
	target Target
	peers  []Target
	oneWay bool
	chain  string
	run    func(ctx context.Context, argv []string) (string, error)
	// restore runs argv with stdin as its standard input.
	restore func(ctx context.Context, argv []string, stdin string) error

	mu       sync.Mutex
	filters  []PacketFilter // every filter of both sides, once each
	rules    [][]string     // the chain's rules, without the chain name
	touched  []PacketFilter // filters Apply got to
	applied  bool
	reverted bool
}

// NewPartition cuts t off from peers (every one a different cluster with a
// Network).
func NewPartition(t Target, peers []Target, oneWay bool) (*Partition, error) {
	if len(peers) == 0 {
		return nil, fmt.Errorf("partition of %s: no cluster on the other side", t.Name)
	}
	p := &Partition{target: t, peers: peers, oneWay: oneWay, run: runCommand, restore: runWithInput}
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	// The drill's process ID in the name lets `drill clean` tell the chains of
	// a drill that was killed from those of one still running.
	p.chain = fmt.Sprintf("%s%d-%s", partitionChainPrefix, os.Getpid(), strings.ToUpper(hex.EncodeToString(b)))

	seen := map[string]bool{}
	addFilters := func(c Target) error {
		if c.Network == nil {
			return fmt.Errorf("partition: cluster %s gives drill no way to filter its traffic (its provider has no packet filter drill can use)", c.Name)
		}
		if len(c.Network.NetworkRanges()) == 0 || len(c.Network.PacketFilters()) == 0 {
			return fmt.Errorf("partition: cluster %s has no address ranges or packet filters", c.Name)
		}
		for _, f := range c.Network.PacketFilters() {
			if !seen[f.Name] {
				seen[f.Name] = true
				p.filters = append(p.filters, f)
			}
		}
		return nil
	}
	if err := addFilters(t); err != nil {
		return nil, err
	}
	mine := t.Network.NetworkRanges()
	for _, peer := range peers {
		if peer.Name == t.Name {
			return nil, fmt.Errorf("partition of %s: a cluster cannot be cut off from itself", t.Name)
		}
		if err := addFilters(peer); err != nil {
			return nil, err
		}
		theirs := peer.Network.NetworkRanges()
		for _, a := range mine {
			for _, b := range theirs {
				if a.Overlaps(b) {
					return nil, fmt.Errorf("partition of %s from %s: their address ranges overlap (%s, %s)", t.Name, peer.Name, a, b)
				}
				if oneWay {
					p.rules = append(p.rules, []string{"-s", a.String(), "-d", b.String(), "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"})
					continue
				}
				p.rules = append(p.rules,
					[]string{"-s", a.String(), "-d", b.String(), "-j", "DROP"},
					[]string{"-s", b.String(), "-d", a.String(), "-j", "DROP"})
			}
		}
	}
	return p, nil
}

// partitionChainPrefix starts the name of every partition's chain:
// DRILL-PART-<pid>-<4 hex digits>, at most 28 characters as iptables wants.
const partitionChainPrefix = "DRILL-PART-"

// ErrFilterUnavailable is wrapped by CleanPartitions when the filter cannot
// even be listed (no iptables there, or no right to use it).
var ErrFilterUnavailable = errors.New("packet filter unavailable")

// LeftoverPartition is a partition chain whose drill is gone.
type LeftoverPartition struct {
	Chain string
	PID   int
}

// CleanPartitions removes from filter the partition chains (and their
// jumps) of drills that are no longer running — killed before they could
// revert — and returns them. Chains of a running drill are left alone.
func CleanPartitions(ctx context.Context, filter PacketFilter) ([]LeftoverPartition, error) {
	out, err := runCommand(ctx, withArgs(filter.Command, "-w", "-S"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFilterUnavailable, err)
	}
	var gone []LeftoverPartition
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		chain, ok := strings.CutPrefix(strings.TrimSpace(line), "-N ")
		if !ok || !strings.HasPrefix(chain, partitionChainPrefix) {
			continue
		}
		pidText, _, _ := strings.Cut(strings.TrimPrefix(chain, partitionChainPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := &Partition{chain: chain, run: runCommand}
		if err := p.removeFrom(ctx, filter); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", chain, filter.Name, err))
			continue
		}
		gone = append(gone, LeftoverPartition{Chain: chain, PID: pid})
	}
	return gone, errors.Join(errs...)
}

// processAlive says whether a process with this ID exists (signal 0).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// hooks are the built-in chains that jump to a partition's chain.
var hooks = []string{"INPUT", "FORWARD"}

// Kind is KindPartition.
func (p *Partition) Kind() string { return KindPartition }

// Target is the cluster cut off.
func (p *Partition) Target() Target { return p.target }

// Chain is the iptables chain that holds the partition's rules.
func (p *Partition) Chain() string { return p.chain }

func (p *Partition) peerNames() []string {
	names := make([]string, len(p.peers))
	for i, c := range p.peers {
		names[i] = c.Name
	}
	return names
}

// Undo is the record of how to remove the partition: its chain and the
// filters it goes into.
func (p *Partition) Undo(context.Context) (event.Undo, error) {
	u := event.Undo{Chain: p.chain}
	for _, f := range p.filters {
		uf, ok := undoFilterOf(f)
		if !ok {
			return event.Undo{Cannot: fmt.Sprintf("partition chain %s is in %s, which a later process cannot reach: remove it by hand with: %s", p.chain, f.Name, p.RestoreCommand())}, nil
		}
		u.Filters = append(u.Filters, uf)
	}
	return u, nil
}

// Check asks every filter for its INPUT chain, which needs what Apply needs:
// the iptables command there and the right to use it.
func (p *Partition) Check(ctx context.Context) error {
	var errs []error
	for _, f := range p.filters {
		if _, err := p.run(ctx, withArgs(f.Command, "-w", "-S", "INPUT")); err != nil {
			errs = append(errs, fmt.Errorf("partition of %s: iptables in %s does not answer (a partition needs iptables there and the right to change it: root or CAP_NET_ADMIN): %w", p.target.Name, f.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Apply installs the rules in every filter: the chain first, then the jumps,
// so that no filter drops anything before its chain is whole.
func (p *Partition) Apply(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied {
		return fmt.Errorf("%s: already applied", p.describe())
	}
	p.applied = true
	for _, f := range p.filters {
		p.touched = append(p.touched, f)
		if len(f.Restore) > 0 {
			if err := p.restore(ctx, withArgs(f.Restore, "-w", "--noflush"), p.batch()); err != nil {
				return fmt.Errorf("%s: in %s: %w", p.describe(), f.Name, err)
			}
			continue
		}
		if _, err := p.run(ctx, withArgs(f.Command, "-w", "-N", p.chain)); err != nil {
			return fmt.Errorf("%s: in %s: %w", p.describe(), f.Name, err)
		}
		for _, r := range p.rules {
			if _, err := p.run(ctx, withArgs(f.Command, append([]string{"-w", "-A", p.chain}, r...)...)); err != nil {
				return fmt.Errorf("%s: in %s: %w", p.describe(), f.Name, err)
			}
		}
		for _, h := range hooks {
			if _, err := p.run(ctx, withArgs(f.Command, "-w", "-I", h, "1", "-j", p.chain)); err != nil {
				return fmt.Errorf("%s: in %s: %w", p.describe(), f.Name, err)
			}
		}
	}
	return nil
}

// batch is the partition as iptables-restore input for the filter table:
// the chain, its rules and the jumps to it, committed at once.
func (p *Partition) batch() string {
	var b strings.Builder
	b.WriteString("*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", p.chain)
	for _, r := range p.rules {
		fmt.Fprintf(&b, "-A %s %s\n", p.chain, strings.Join(r, " "))
	}
	for _, h := range hooks {
		fmt.Fprintf(&b, "-I %s 1 -j %s\n", h, p.chain)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Revert removes the jumps and the chain from every filter Apply got to.
// What is already gone is no error, so a Revert after a partial Apply, or a
// second one, removes just what is left.
func (p *Partition) Revert(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.applied || p.reverted {
		return nil
	}
	var errs []error
	for _, f := range p.touched {
		if err := p.removeFrom(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("in %s: %w", f.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revert %s: %w", p.describe(), err)
	}
	p.reverted = true
	return nil
}

func (p *Partition) removeFrom(ctx context.Context, f PacketFilter) error {
	var errs []error
	gone := func(err error) bool {
		return err == nil || strings.Contains(err.Error(), "No chain/target/match") ||
			strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "Bad rule")
	}
	for _, h := range hooks {
		// A jump inserted twice (a retried Apply) is removed as often as it is there.
		for range 8 {
			_, err := p.run(ctx, withArgs(f.Command, "-w", "-D", h, "-j", p.chain))
			if err != nil {
				if !gone(err) {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	if _, err := p.run(ctx, withArgs(f.Command, "-w", "-F", p.chain)); !gone(err) {
		errs = append(errs, err)
	}
	if _, err := p.run(ctx, withArgs(f.Command, "-w", "-X", p.chain)); !gone(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Describe says what the fault does.
func (p *Partition) Describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.describe()
}

func (p *Partition) describe() string {
	way := "both ways"
	if p.oneWay {
		way = "one way: connections " + p.target.Name + " opens fail, theirs to it work"
	}
	names := make([]string, len(p.filters))
	for i, f := range p.filters {
		names[i] = f.Name
	}
	return fmt.Sprintf("partition cluster %s from %s (%s): iptables chain %s dropping their packets in %s",
		p.target.Name, strings.Join(p.peerNames(), ", "), way, p.chain, strings.Join(names, ", "))
}

// RestoreCommand removes the chain by hand from every filter, one shell line
// each.
func (p *Partition) RestoreCommand() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lines []string
	for _, f := range p.filters {
		cmd := make([]string, len(f.Command))
		for i, a := range f.Command {
			cmd[i] = shellQuote(a)
		}
		ipt := strings.Join(cmd, " ")
		var parts []string
		for _, h := range hooks {
			parts = append(parts, fmt.Sprintf("%s -w -D %s -j %s", ipt, h, p.chain))
		}
		parts = append(parts, fmt.Sprintf("%s -w -F %s", ipt, p.chain), fmt.Sprintf("%s -w -X %s", ipt, p.chain))
		lines = append(lines, strings.Join(parts, "; "))
	}
	return strings.Join(lines, "\n")
}

// Record is the fault as an event payload.
func (p *Partition) Record() event.Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, len(p.filters))
	for i, f := range p.filters {
		names[i] = f.Name
	}
	way := "both ways"
	if p.oneWay {
		way = "one way"
	}
	return event.Fault{
		Kind: KindPartition, Cluster: p.target.Name,
		Peers: p.peerNames(),
		Note:  fmt.Sprintf("%s; iptables chain %s (%d rules) in %s", way, p.chain, len(p.rules), strings.Join(names, ", ")),
	}
}

// withArgs is a filter's command with args after it.
func withArgs(cmd []string, args ...string) []string {
	return append(slices.Clone(cmd), args...)
}

// runWithInput runs argv with stdin; the error carries stderr.
func runWithInput(ctx context.Context, argv []string, stdin string) error {
	_, err := execute(ctx, argv, strings.NewReader(stdin))
	return err
}

// runCommand runs argv and returns its output; the error carries stderr.
func runCommand(ctx context.Context, argv []string) (string, error) {
	return execute(ctx, argv, nil)
}

func execute(ctx context.Context, argv []string, stdin io.Reader) (string, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin = stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), fmt.Errorf("%s: %s", strings.Join(argv, " "), msg)
	}
	return out.String(), nil
}
