package fault

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeNetwork is a cluster's network for tests: ranges and filters as given.
type fakeNetwork struct {
	ranges  []netip.Prefix
	filters []PacketFilter
}

func (n fakeNetwork) NetworkRanges() []netip.Prefix { return n.ranges }
func (n fakeNetwork) PacketFilters() []PacketFilter { return n.filters }

// hostFilter is HostFilter without iptables-restore: one iptables call per
// rule, the path of filters that have no Restore command.
var (
	hostFilter      = PacketFilter{Name: HostFilter.Name, Command: HostFilter.Command}
	hostBatchFilter = HostFilter
)

func netTarget(name, cidr string, filters ...PacketFilter) Target {
	return Target{Name: name, Network: fakeNetwork{ranges: []netip.Prefix{netip.MustParsePrefix(cidr)}, filters: filters}}
}

// needIPTables skips unless this process may change the host's netfilter.
func needIPTables(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables on this machine")
	}
	if os.Geteuid() != 0 {
		t.Skip("changing iptables needs root")
	}
	if out, err := exec.Command("iptables", "-w", "-S", "INPUT").CombinedOutput(); err != nil {
		t.Skipf("iptables does not work here: %v: %s", err, out)
	}
}

// listen serves accept-and-hold on addr (a loopback address).
func listen(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// dial connects from the loopback address src to dst within timeout and
// says how it went: "ok", "timeout", or the error.
func dial(src, dst string, timeout time.Duration) string {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", dst)
	if err == nil {
		c.Close()
		return "ok"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, syscall.EPERM) {
		return "EPERM"
	}
	return err.Error()
}

func chainsOf(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S: %v: %s", err, out)
	}
	return string(out)
}

// TestPartitionHost cuts two address ranges of this host apart with real
// iptables rules, as the local provider's clusters are: connections time
// out (no reset, no EPERM) while the partition holds, in the directions it
// cuts, and work again after Revert, which leaves no rule behind.
func TestPartitionHost(t *testing.T) {
	needIPTables(t)
	const aIP, bIP = "127.77.0.1", "127.78.0.1"
	toA, toB := listen(t, aIP), listen(t, bIP)
	const wait = 300 * time.Millisecond

	for _, tc := range []struct {
		name             string
		filter           PacketFilter
		oneWay           bool
		aToB, bToA, aToA string
	}{
		{"both ways", hostFilter, false, "timeout", "timeout", "ok"},
		{"one way", hostFilter, true, "timeout", "ok", "ok"},
		{"both ways, one iptables-restore batch", hostBatchFilter, false, "timeout", "timeout", "ok"},
		{"one way, one iptables-restore batch", hostBatchFilter, true, "timeout", "ok", "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netTarget("cluster1", "127.77.0.0/16", tc.filter)
			b := netTarget("cluster2", "127.78.0.0/16", tc.filter)
			if got := dial(aIP, toB, wait); got != "ok" {
				t.Fatalf("before the partition, cluster1 → cluster2: %s", got)
			}
			p, err := NewPartition(a, []Target{b}, tc.oneWay)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Revert(context.Background()) })
			if err := p.Apply(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(chainsOf(t), "-A INPUT -j "+p.Chain()) {
				t.Fatalf("no jump to %s in INPUT:\n%s", p.Chain(), chainsOf(t))
			}
			for _, c := range []struct{ what, src, dst, want string }{
				{"cluster1 → cluster2", aIP, toB, tc.aToB},
				{"cluster2 → cluster1", bIP, toA, tc.bToA},
				{"cluster1 → cluster1", "127.77.0.2", toA, tc.aToA},
				{"outside → cluster2", "127.0.0.1", toB, "ok"},
			} {
				if got := dial(c.src, c.dst, wait); got != c.want {
					t.Errorf("during the partition, %s: %s, want %s", c.what, got, c.want)
				}
			}
			if err := p.Revert(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := p.Revert(t.Context()); err != nil {
				t.Errorf("a second revert: %v", err)
			}
			if s := chainsOf(t); strings.Contains(s, p.Chain()) {
				t.Errorf("after revert, iptables still holds %s:\n%s", p.Chain(), s)
			}
			if got := dial(aIP, toB, wait); got != "ok" {
				t.Errorf("after revert, cluster1 → cluster2: %s", got)
			}
		})
	}
}

// TestPartitionPartialApply: an Apply that fails half-way (here, at the jump
// into FORWARD) leaves nothing behind once reverted.
func TestPartitionPartialApply(t *testing.T) {
	needIPTables(t)
	p, err := NewPartition(netTarget("cluster1", "127.77.0.0/16", hostFilter), []Target{netTarget("cluster2", "127.78.0.0/16", hostFilter)}, false)
	if err != nil {
		t.Fatal(err)
	}
	p.run = func(ctx context.Context, argv []string) (string, error) {
		if strings.Contains(strings.Join(argv, " "), "-I FORWARD") {
			return "", errors.New("iptables: simulated failure")
		}
		return runCommand(ctx, argv)
	}
	if err := p.Apply(t.Context()); err == nil {
		t.Fatal("Apply succeeded although a command failed")
	}
	if s := chainsOf(t); !strings.Contains(s, p.Chain()) {
		t.Fatalf("the failed Apply installed nothing; the test proves nothing:\n%s", s)
	}
	if err := p.Revert(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := chainsOf(t); strings.Contains(s, p.Chain()) {
		t.Errorf("after revert, iptables still holds %s:\n%s", p.Chain(), s)
	}
}

// TestPartitionRules checks the rules and where they go without touching
// iptables: each filter once, both directions of every pair of ranges, and a
// restore command per filter.
func TestPartitionRules(t *testing.T) {
	node := func(n string) PacketFilter {
		return PacketFilter{Name: "node " + n, Command: []string{"docker", "exec", n, "iptables"}}
	}
	a := Target{Name: "cluster1", Network: fakeNetwork{
		ranges:  []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16"), netip.MustParsePrefix("172.18.0.2/32")},
		filters: []PacketFilter{node("cluster1-control-plane")},
	}}
	b := Target{Name: "cluster2", Network: fakeNetwork{
		ranges:  []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")},
		filters: []PacketFilter{node("cluster2-control-plane"), node("cluster2-worker")},
	}}
	var calls []string
	p, err := NewPartition(a, []Target{b}, false)
	if err != nil {
		t.Fatal(err)
	}
	p.run = func(_ context.Context, argv []string) (string, error) {
		calls = append(calls, strings.Join(argv, " "))
		return "", nil
	}
	if err := p.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 3 filters × (new chain + 4 rules + 2 jumps)
	if len(calls) != 3*7 {
		t.Fatalf("%d iptables calls, want 21:\n%s", len(calls), strings.Join(calls, "\n"))
	}
	for _, want := range []string{
		"docker exec cluster2-worker iptables -w -A " + p.Chain() + " -s 172.18.0.2/32 -d 10.20.0.0/16 -j DROP",
		"docker exec cluster2-worker iptables -w -A " + p.Chain() + " -s 10.20.0.0/16 -d 172.18.0.2/32 -j DROP",
		"docker exec cluster1-control-plane iptables -w -I FORWARD 1 -j " + p.Chain(),
	} {
		if !strings.Contains(strings.Join(calls, "\n"), want) {
			t.Errorf("no call %q", want)
		}
	}
	if n := strings.Count(p.RestoreCommand(), "\n") + 1; n != 3 {
		t.Errorf("restore command has %d lines, want one per filter:\n%s", n, p.RestoreCommand())
	}
	rec := p.Record()
	if rec.Kind != KindPartition || rec.Cluster != "cluster1" || len(rec.Peers) != 1 || rec.Peers[0] != "cluster2" {
		t.Errorf("record %+v", rec)
	}

	// With iptables-restore, one batch per filter holds the chain, every
	// rule and the jumps.
	batched := func(f PacketFilter) PacketFilter {
		f.Restore = []string{"docker", "exec", "-i", strings.Fields(f.Name)[1], "iptables-restore"}
		return f
	}
	ab := Target{Name: "cluster1", Network: fakeNetwork{ranges: a.Network.NetworkRanges(), filters: []PacketFilter{batched(node("cluster1-control-plane"))}}}
	bb := Target{Name: "cluster2", Network: fakeNetwork{ranges: b.Network.NetworkRanges(), filters: []PacketFilter{batched(node("cluster2-control-plane"))}}}
	pb, err := NewPartition(ab, []Target{bb}, false)
	if err != nil {
		t.Fatal(err)
	}
	var batches []string
	pb.restore = func(_ context.Context, argv []string, stdin string) error {
		batches = append(batches, strings.Join(argv, " ")+"\n"+stdin)
		return nil
	}
	pb.run = func(_ context.Context, argv []string) (string, error) {
		t.Errorf("a single iptables call %v where a batch was due", argv)
		return "", nil
	}
	if err := pb.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 {
		t.Fatalf("%d batches, want one per filter", len(batches))
	}
	for _, want := range []string{"docker exec -i cluster2-control-plane iptables-restore -w --noflush\n*filter\n:" + pb.Chain() + " - [0:0]\n",
		"-A " + pb.Chain() + " -s 10.20.0.0/16 -d 172.18.0.2/32 -j DROP\n", "-I FORWARD 1 -j " + pb.Chain() + "\nCOMMIT\n"} {
		if !strings.Contains(batches[1], want) {
			t.Errorf("batch lacks %q:\n%s", want, batches[1])
		}
	}

	if _, err := NewPartition(a, []Target{a}, false); err == nil {
		t.Error("a cluster partitioned from itself")
	}
	if _, err := NewPartition(a, []Target{{Name: "cluster3"}}, false); err == nil || !strings.Contains(err.Error(), "cluster3") {
		t.Errorf("a peer without a network: %v", err)
	}
	overlap := Target{Name: "cluster3", Network: fakeNetwork{ranges: []netip.Prefix{netip.MustParsePrefix("10.10.5.0/24")}, filters: []PacketFilter{node("x")}}}
	if _, err := NewPartition(a, []Target{overlap}, false); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping ranges: %v", err)
	}
}

// TestCleanPartitions: the chain of a drill that is gone (its process ID no
// longer exists) is removed with its jumps; that of a running drill is kept.
func TestCleanPartitions(t *testing.T) {
	needIPTables(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	leftover := partitionChainPrefix + strconv.Itoa(dead.Process.Pid) + "-ABCD"
	running := partitionChainPrefix + strconv.Itoa(os.Getpid()) + "-ABCD"
	for _, c := range []string{leftover, running} {
		p := &Partition{chain: c, run: runCommand}
		t.Cleanup(func() { _ = p.removeFrom(context.Background(), hostFilter) })
		for _, args := range [][]string{{"-N", c}, {"-A", c, "-s", "127.77.0.0/16", "-d", "127.78.0.0/16", "-j", "DROP"}, {"-I", "INPUT", "1", "-j", c}} {
			if out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %v: %v: %s", args, err, out)
			}
		}
	}
	gone, err := CleanPartitions(t.Context(), hostFilter)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].Chain != leftover || gone[0].PID != dead.Process.Pid {
		t.Errorf("cleaned %+v, want just %s", gone, leftover)
	}
	s := chainsOf(t)
	if strings.Contains(s, leftover) {
		t.Errorf("the leftover chain is still there:\n%s", s)
	}
	if !strings.Contains(s, "-A INPUT -j "+running) {
		t.Errorf("the running drill's chain was removed:\n%s", s)
	}
}
