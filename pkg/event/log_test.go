package event

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	goldenfile "github.com/meshdrill/drill/internal/golden"
)

func ptr[T any](v T) *T { return &v }

// t0 has nanoseconds so that the round trip is checked to the nanosecond.
var t0 = time.Date(2026, 11, 24, 21, 0, 0, 123456789, time.UTC)

// goldenEvents are the events of testdata/events.golden.jsonl: one of most kinds a
// run records, and the strings and payloads that are hard to encode.
func goldenEvents() []Event {
	at := func(e Event, seq uint64, elapsed time.Duration) Event {
		e.Seq, e.Time, e.Elapsed = seq, t0.Add(elapsed), elapsed
		return e
	}
	return []Event{
		at(New(RunStarted, "", "drill", RunInfo{Scenario: "reviews-failover", File: "scenarios/reviews-failover.yaml", Provider: "local",
			Clusters: []string{"cluster1", "cluster2"}, DataPlane: "emulated", LoadDuration: 3 * time.Minute}), 1, 0),
		at(New(LoadStarted, "cluster1", "load", LoadInfo{Target: "http://127.0.0.1:8080/productpage", Rate: "50/1s", Duration: 3 * time.Minute}), 2, 1500*time.Microsecond),
		at(New(LoadWindow, "cluster1", "load", Window{Start: 0, End: time.Second, Requests: 50, Codes: map[string]int64{"200": 49, "0": 1},
			Errors: 1, P50: 4 * time.Millisecond, P90: 9 * time.Millisecond, P99: 21 * time.Millisecond, Max: 30 * time.Millisecond, Rate: 50}), 3, time.Second+1500*time.Microsecond),
		at(New(StepStarted, "", "engine", Step{Name: "reviews-down", Trigger: "at 30s", Action: "fault"}), 4, 30*time.Second),
		at(New(FaultApplied, "cluster1", "fault/reviews-down", Fault{Step: "reviews-down", Kind: "scale", Cluster: "cluster1", Namespace: "default",
			Workload: "reviews-v1", From: ptr(int32(1)), To: ptr(int32(0)), Restore: "kubectl --context cluster1 -n default scale deployment/reviews-v1 --replicas=1"}), 5, 30*time.Second+2*time.Millisecond),
		at(New(StatsSample, "cluster1", "stats/productpage", Sample{Workload: "productpage-v1", Pod: "productpage-v1-7d9f8-x2x", Interval: 2 * time.Second,
			Clusters: map[string]ClusterDelta{"outbound|9080||reviews.default.svc.cluster.local": {Requests: 100, Codes: map[string]int64{"200": 97, "503": 3},
				Upstream5xx: 3, EjectionsActive: 1, MembershipHealthy: 2, MembershipTotal: 3}}}), 6, 31*time.Second),
		at(New(FailoverDetected, "cluster1", "engine", Failover{Service: "reviews", From: "cluster1", To: "cluster2", After: "reviews-down",
			Took: 4200 * time.Millisecond, Resolution: 2 * time.Second}), 7, 34*time.Second+200*time.Millisecond),
		// Strings with quotes, escapes, control characters, HTML and non-ASCII.
		at(New(Log, "clüster-β", "fault/\"quoted\"\t<tab>&\x01", LogLine{Level: "warn", Message: "line one\nline two: \"<b>&</b>\" \\ ok — ✓"}), 8, 35*time.Second),
		// No payload, a whole second (RFC 3339 drops the fraction) and a long elapsed.
		{Seq: 9, Time: time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC), Elapsed: 2*time.Hour - 123456789, Type: StepFinished},
		// A gap in Seq: the log writer misses nothing, but a subscriber lost 10..11.
		at(New(Log, "", busSource, LogLine{Level: "warn", Message: `event bus: subscriber "engine" lost 2 events (its buffer of 8 was full)`}), 12, 2*time.Hour),
	}
}

func encode(t testing.TB, evs []Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewLogWriter(&buf, WithFlushInterval(0))
	for _, e := range evs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(r io.Reader) ([]Event, error) {
	lr := NewLogReader(r)
	var evs []Event
	for {
		e, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
}

// TestGolden writes the golden events and compares the bytes with the golden file,
// then reads the file back and compares the events field for field. With -update it
// rewrites the golden file and the truncated log derived from it.
func TestGolden(t *testing.T) {
	const golden = "testdata/events.golden.jsonl"
	const truncated = "testdata/truncated.jsonl"
	evs := goldenEvents()
	got := encode(t, evs)
	if goldenfile.Update() {
		lines := bytes.SplitAfter(got, []byte("\n"))
		cut := append(bytes.Join(lines[:5], nil), lines[5][:len(lines[5])/2]...)
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(truncated, cut, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding differs from %s (review, then go test -run TestGolden -update):\n got:\n%s\nwant:\n%s", golden, got, want)
	}

	back, err := ReadLog(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, evs) {
		for i := range min(len(back), len(evs)) {
			if !reflect.DeepEqual(back[i], evs[i]) {
				t.Errorf("event %d read back as\n%+v\nwant\n%+v", i, back[i], evs[i])
			}
		}
		t.Fatalf("read %d events, wrote %d", len(back), len(evs))
	}

	// encoding/json must read each line as the event encoding/json itself encodes.
	for i, line := range bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n")) {
		std, err := json.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		var a, b Event
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if err := json.Unmarshal(std, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("line %d decodes as %+v, encoding/json's own line as %+v", i+1, a, b)
		}
	}
}

func TestDataEncoding(t *testing.T) {
	tests := []struct {
		name string
		data json.RawMessage
		want json.RawMessage // as read back
	}{
		{name: "compact kept byte for byte", data: json.RawMessage(`{"b":1,"a":[true,null]}`), want: json.RawMessage(`{"b":1,"a":[true,null]}`)},
		{name: "HTML not escaped", data: json.RawMessage(`"<b>&amp;</b>"`), want: json.RawMessage(`"<b>&amp;</b>"`)},
		{name: "escapes kept", data: json.RawMessage(`"\u003cb\u003e \"x\" \n"`), want: json.RawMessage(`"\u003cb\u003e \"x\" \n"`)},
		{name: "spaces compacted", data: json.RawMessage("{ \"a\" : [ 1, 2 ],\n\t\"b\": \"x y\" }\r\n"), want: json.RawMessage(`{"a":[1,2],"b":"x y"}`)},
		{name: "null", data: json.RawMessage(`null`), want: json.RawMessage(`null`)},
		{name: "number", data: json.RawMessage(`1.5e3`), want: json.RawMessage(`1.5e3`)},
		{name: "invalid JSON kept as a string", data: json.RawMessage("not {json}\n"), want: json.RawMessage(`"not {json}\n"`)},
		{name: "two values kept as a string", data: json.RawMessage(`1 2`), want: json.RawMessage(`"1 2"`)},
		{name: "empty omitted", data: json.RawMessage{}, want: nil},
		{name: "nil omitted", data: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Event{Seq: 1, Time: t0, Type: Log, Data: tt.data}
			line := encode(t, []Event{in})
			if bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("encoded as more than one line: %q", line)
			}
			evs, err := readAll(bytes.NewReader(line))
			if err != nil || len(evs) != 1 {
				t.Fatalf("read back %d events, %v, from %q", len(evs), err, line)
			}
			if !bytes.Equal(evs[0].Data, tt.want) || (tt.want == nil) != (evs[0].Data == nil) {
				t.Errorf("Data read back as %q, want %q (line %q)", evs[0].Data, tt.want, line)
			}
		})
	}
}

func TestWriteRefusesUnencodableTime(t *testing.T) {
	var buf bytes.Buffer
	w := NewLogWriter(&buf, WithFlushInterval(0))
	err := w.Write(Event{Seq: 1, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Type: Log})
	if err == nil || !strings.Contains(err.Error(), "years 0-9999") {
		t.Errorf("Write(year 10000) = %v, want an error", err)
	}
	// The writer is still usable: a bad event is refused, not the log.
	if err := w.Write(Event{Seq: 2, Time: t0, Type: Log}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if evs, err := readAll(&buf); err != nil || len(evs) != 1 || evs[0].Seq != 2 {
		t.Errorf("log holds %+v, %v; want event 2 alone", evs, err)
	}
}

func TestReadErrors(t *testing.T) {
	ev := func(seq int) string {
		return fmt.Sprintf(`{"seq":%d,"time":"2026-11-24T21:00:00.5Z","elapsed":%d,"type":"log"}`, seq, seq*1000)
	}
	tests := []struct {
		name      string
		in        string
		wantSeqs  string // seqs read before the error (or all)
		wantLine  int    // 0: no error
		wantErr   string
		truncated bool
	}{
		{name: "empty", in: "", wantSeqs: "[]"},
		{name: "clean", in: ev(1) + "\n" + ev(2) + "\n", wantSeqs: "[1 2]"},
		{name: "last line whole but without newline", in: ev(1) + "\n" + ev(2), wantSeqs: "[1 2]"},
		{name: "blank lines, CRLF and gaps", in: "\n" + ev(1) + "\r\n\n  \n" + ev(5) + "\n\n", wantSeqs: "[1 5]"},
		{name: "truncated last line", in: ev(1) + "\n" + ev(2)[:30], wantSeqs: "[1]", wantLine: 2, wantErr: "without a newline after 30 bytes", truncated: true},
		{name: "truncated at a brace", in: ev(1) + "\n" + `{"seq":2,"type":"log","data":{"a":1}`, wantSeqs: "[1]", wantLine: 2, truncated: true},
		{name: "garbage line", in: ev(1) + "\nhello\n" + ev(3) + "\n", wantSeqs: "[1]", wantLine: 2, wantErr: "must be a JSON object"},
		{name: "invalid JSON", in: ev(1) + "\n" + `{"seq":2,"type":"log",}` + "\n", wantSeqs: "[1]", wantLine: 2, wantErr: "invalid JSON at byte"},
		{name: "null", in: "null\n", wantSeqs: "[]", wantLine: 1, wantErr: "JSON object"},
		{name: "array", in: "[" + ev(1) + "]\n", wantSeqs: "[]", wantLine: 1, wantErr: "JSON object"},
		{name: "no seq", in: `{"type":"log"}` + "\n", wantSeqs: "[]", wantLine: 1, wantErr: "no seq"},
		{name: "no type", in: `{"seq":1}` + "\n", wantSeqs: "[]", wantLine: 1, wantErr: "event 1 has no type"},
		{name: "seq as string", in: `{"seq":"1","type":"log"}` + "\n", wantSeqs: "[]", wantLine: 1, wantErr: "Event.seq"},
		{name: "bad time", in: `{"seq":1,"time":"yesterday","type":"log"}` + "\n", wantSeqs: "[]", wantLine: 1, wantErr: "yesterday"},
		{name: "seq backwards", in: ev(2) + "\n" + ev(1) + "\n", wantSeqs: "[2]", wantLine: 2, wantErr: "event 1 follows event 2"},
		{name: "seq repeated", in: ev(1) + "\n" + ev(1) + "\n", wantSeqs: "[1]", wantLine: 2, wantErr: "event 1 follows event 1"},
		{name: "error after blank lines counts them", in: ev(1) + "\n\n\nx\n", wantSeqs: "[1]", wantLine: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := readAll(strings.NewReader(tt.in))
			if got := fmt.Sprint(seqs(evs)); got != tt.wantSeqs {
				t.Errorf("read seqs %s, want %s", got, tt.wantSeqs)
			}
			if tt.wantLine == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			if le.Line != tt.wantLine || le.Name != "event log" {
				t.Errorf("error at %s:%d, want event log:%d: %v", le.Name, le.Line, tt.wantLine, err)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("event log:%d: ", tt.wantLine)) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to start with the line and contain %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrTruncated) != tt.truncated {
				t.Errorf("errors.Is(%v, ErrTruncated) = %v, want %v", err, !tt.truncated, tt.truncated)
			}
		})
	}
}

func TestReadLogFiles(t *testing.T) {
	golden := goldenEvents()
	tests := []struct {
		path      string
		want      []Event
		wantErr   string
		truncated bool
	}{
		{path: "testdata/events.golden.jsonl", want: golden},
		{path: "testdata/truncated.jsonl", want: golden[:5], wantErr: "testdata/truncated.jsonl:6: the last line ends without a newline", truncated: true},
		{path: "testdata/malformed.jsonl", want: golden[:2], wantErr: "testdata/malformed.jsonl:3: not an event: invalid JSON"},
		{path: "testdata/missing.jsonl", wantErr: "read event log: open testdata/missing.jsonl: no such file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			evs, err := ReadLog(tt.path)
			if !reflect.DeepEqual(evs, tt.want) {
				t.Errorf("read %v, want %v", seqs(evs), seqs(tt.want))
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrTruncated) != tt.truncated {
				t.Errorf("errors.Is(%v, ErrTruncated) != %v", err, tt.truncated)
			}
		})
	}
}

func TestReadLongLines(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // longer than the reader's buffer
	e := Event{Seq: 1, Time: t0, Type: StatsSample, Data: json.RawMessage(`"` + big + `"`)}
	evs, err := readAll(bytes.NewReader(encode(t, []Event{e})))
	if err != nil || len(evs) != 1 || !bytes.Equal(evs[0].Data, e.Data) {
		t.Fatalf("a 200 KiB line read back as %d events, %v", len(evs), err)
	}

	huge := bytes.Repeat([]byte("y"), MaxLineSize+1)
	_, err = readAll(bytes.NewReader(huge))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("an over-long line gave %v, want a line error", err)
	}
}

// TestRecord runs a bus with the log attached, as a run does, and checks that the log
// holds exactly what another subscriber received.
func TestRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	lw, err := CreateLog(path)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBus(WithLogger(quiet))
	sub := b.Subscribe("log")
	errc := make(chan error, 1)
	go func() { errc <- lw.Record(t.Context(), sub) }()
	witness := b.Subscribe("witness", WithBuffer(10000))

	publishAll(b, 3, 2000)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Record did not return within 20s of the bus closing")
	}
	// Record flushes before returning: the file is whole before Close.
	evs, err := ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	want := drain(t, witness, time.Second)
	if len(evs) != 6000 || !reflect.DeepEqual(evs, want) {
		t.Fatalf("log holds %d events, the witness received %d; equal: %v", len(evs), len(want), reflect.DeepEqual(evs, want))
	}
	if lw.Written() != 6000 {
		t.Errorf("Written() = %d", lw.Written())
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := lw.Write(New(Log, "", "late", nil)); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestRecordReportsDrops stalls the log's writer so that its subscription overflows:
// the publisher must not block, and the log must say what it lacks.
func TestRecordReportsDrops(t *testing.T) {
	pr, pw := io.Pipe()
	lw := NewLogWriter(pw, WithFlushInterval(0))
	b := NewBus(WithLogger(quiet))
	sub := b.Subscribe("log", WithBuffer(16))
	errc := make(chan error, 1)
	go func() { errc <- lw.Record(t.Context(), sub) }()

	// Nobody reads the pipe yet: once the writer's 64 KiB buffer is full, Record
	// blocks in Write and the subscription fills up.
	const n = 5000
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishAll(b, 1, n)
	}()
	waitDone(t, done, 10*time.Second, "publishing while the log writer is stalled")
	if err := b.Close(); !errors.Is(err, ErrDropped) {
		t.Fatalf("bus Close = %v, want ErrDropped", err)
	}

	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() { _, err := io.Copy(&out, pr); copied <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), `subscriber "log" fell behind its buffer of 16`) {
			t.Fatalf("Record = %v, want ErrDropped naming the subscriber", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Record did not return")
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-copied; err != nil {
		t.Fatal(err)
	}

	evs, err := readAll(&out)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	var line LogLine
	if err := last.Decode(&line); err != nil {
		t.Fatal(err)
	}
	lost := b.Published() - uint64(len(evs)) // the bus's own notice and report included
	if sub.Dropped() == 0 || sub.Dropped() != lost || !strings.Contains(line.Message, fmt.Sprintf(`"log" lost %d events`, lost)) {
		t.Errorf("log holds %d of %d events, Dropped() = %d, last event says %q", len(evs)-1, n, sub.Dropped(), line.Message)
	}
}

// TestRecordWriteError records to /dev/full, where every write fails with ENOSPC.
func TestRecordWriteError(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer f.Close()
	lw := NewLogWriter(f, WithFlushInterval(time.Millisecond))
	b := NewBus(WithLogger(quiet))
	sub := b.Subscribe("log")
	errc := make(chan error, 1)
	go func() { errc <- lw.Record(t.Context(), sub) }()

	// The periodic flush meets the error; Record returns it on its next write.
	for i := 0; ; i++ {
		b.Publish(New(StepStarted, "", "test", nil))
		select {
		case err := <-errc:
			if !strings.Contains(err.Error(), "write event log /dev/full: ") || !strings.Contains(err.Error(), "no space left on device") {
				t.Fatalf("Record = %v, want the write error naming the file", err)
			}
			if werr := lw.Write(New(Log, "", "x", nil)); werr == nil || werr.Error() != err.Error() {
				t.Errorf("Write after a failure = %v, want the same error", werr)
			}
			if cerr := lw.Close(); cerr == nil {
				t.Error("Close after a write failure returned nil")
			}
			_ = b.Close()
			return
		case <-time.After(time.Millisecond):
		}
		if i > 10000 {
			t.Fatal("Record never reported the write error")
		}
	}
}

func TestRecordStopsOnCancel(t *testing.T) {
	var buf bytes.Buffer
	lw := NewLogWriter(&buf, WithFlushInterval(0))
	b := NewBus(WithLogger(quiet))
	defer b.Close()
	sub := b.Subscribe("log")
	b.Publish(New(StepStarted, "", "test", nil))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- lw.Record(ctx, sub) }()
	// Wait for the event to be written, then cancel.
	deadline := time.Now().Add(10 * time.Second)
	for lw.Written() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("event not written within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Record after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Record ignored cancellation")
	}
	if !strings.Contains(buf.String(), `"type":"step.started"`) {
		t.Errorf("event written before cancel was not flushed: %q", buf.String())
	}
	if _, ok := <-sub.Events(); ok {
		t.Error("Record did not unsubscribe when it stopped")
	}
}

func TestPeriodicFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	lw, err := CreateLog(path, WithFlushInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	if err := lw.Write(goldenEvents()[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := ReadLog(path)
		if err == nil && len(evs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the written event did not reach the file within 10s: %d events, %v", len(evs), err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCreateLogRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	if err := os.WriteFile(path, []byte("a previous run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := CreateLog(path)
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "new report directory") {
		t.Errorf("CreateLog over an existing log = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a previous run\n" {
		t.Errorf("existing log changed to %q", b)
	}
}

func TestConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	lw := NewLogWriter(&buf, WithFlushInterval(time.Millisecond))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				if err := lw.Write(Event{Seq: uint64(g*1000 + i + 1), Time: t0, Type: Log}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	// Lines from different goroutines interleave but never mix.
	n := 0
	for line := range bytes.Lines(buf.Bytes()) {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d mixed: %q", n+1, line)
		}
		n++
	}
	if n != 4000 {
		t.Errorf("%d lines, want 4000", n)
	}
}

// FuzzReadLog feeds arbitrary bytes to the reader: it must not panic, must only
// return events that satisfy its own checks, must report errors with a line, and
// what it returns must survive a write and a second read unchanged.
func FuzzReadLog(f *testing.F) {
	for _, p := range []string{"testdata/events.golden.jsonl", "testdata/truncated.jsonl", "testdata/malformed.jsonl"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"seq":1,"time":"2026-11-24T21:00:00+05:30","elapsed":1,"type":"log","data":{ "a" : 1 }}` + "\n"))
	f.Add([]byte(`{"seq":1,"type":"log","data":null,"time":null,"Seq":2}` + "\n\n" + `{"seq":3,"type":"\ud800x"}`))
	f.Add([]byte("\n\r\n{}\n[]\nnull\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		evs, err := readAll(bytes.NewReader(in))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
		}
		var last uint64
		for _, e := range evs {
			if e.Seq <= last || e.Type == "" {
				t.Fatalf("returned an event the reader should refuse: %+v after seq %d", e, last)
			}
			last = e.Seq
		}
		out := encode(t, evs)
		again, err := readAll(bytes.NewReader(out))
		if err != nil || len(again) != len(evs) {
			t.Fatalf("rewritten log read back as %d of %d events, %v:\n%s", len(again), len(evs), err, out)
		}
		for i, a := range again {
			e := evs[i]
			_, off1 := e.Time.Zone()
			_, off2 := a.Time.Zone()
			var data bytes.Buffer
			if len(e.Data) > 0 {
				if err := json.Compact(&data, e.Data); err != nil {
					t.Fatalf("reader returned invalid Data %q: %v", e.Data, err)
				}
			}
			if a.Seq != e.Seq || !a.Time.Equal(e.Time) || off1 != off2 || a.Elapsed != e.Elapsed || a.Type != e.Type ||
				a.Cluster != e.Cluster || a.Source != e.Source || !bytes.Equal(a.Data, data.Bytes()) {
				t.Fatalf("event changed on a second round trip:\n%+v\n%+v", e, a)
			}
		}
	})
}

// FuzzWriteLog checks the hand-written encoder against encoding/json: whatever the
// strings and payload, the line reads back as encoding/json would have kept them.
func FuzzWriteLog(f *testing.F) {
	f.Add(uint64(1), int64(1795640400), int64(123456789), int64(1500), "log", "cluster1", "load", []byte(`{"a":1}`))
	f.Add(uint64(7), int64(0), int64(0), int64(-1), "\x00\"\\\u2028", "\xff\xfe", "<&>", []byte("{ \"a\" :\n 1 }"))
	f.Add(uint64(1<<63), int64(-62135596800), int64(999999999), int64(1<<62), "é", "", "", []byte("not json"))
	f.Fuzz(func(t *testing.T, seq uint64, sec, nsec, elapsed int64, typ, cluster, source string, data []byte) {
		if seq == 0 || typ == "" {
			return
		}
		// Any instant in years 0001-9999.
		const lo, span = -62135596800, 315537897600
		sec = lo + ((sec%span)+span)%span
		e := Event{Seq: seq, Time: time.Unix(sec, nsec%1e9).UTC(), Elapsed: time.Duration(elapsed),
			Type: Type(typ), Cluster: cluster, Source: source, Data: data}
		line := encode(t, []Event{e})
		if bytes.Count(line, []byte("\n")) != 1 || !utf8.Valid(bytes.TrimSuffix(line, []byte("\n"))) && utf8.Valid(data) {
			t.Fatalf("bad line %q", line)
		}
		evs, err := readAll(bytes.NewReader(line))
		if err != nil || len(evs) != 1 {
			t.Fatalf("read back %d events, %v, from %q", len(evs), err, line)
		}
		a := evs[0]

		// What encoding/json makes of the same strings.
		var std struct{ T, C, S string }
		b, _ := json.Marshal(struct{ T, C, S string }{typ, cluster, source})
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatal(err)
		}
		want := Event{Seq: seq, Time: e.Time, Elapsed: e.Elapsed, Type: Type(std.T), Cluster: std.C, Source: std.S}
		switch {
		case len(data) == 0:
		case json.Valid(data):
			var c bytes.Buffer
			_ = json.Compact(&c, data)
			want.Data = c.Bytes()
		default:
			var s string
			if err := json.Unmarshal(a.Data, &s); err != nil {
				t.Fatalf("invalid payload %q not kept as a string: %q", data, a.Data)
			}
			b, _ := json.Marshal(string(data))
			var ws string
			_ = json.Unmarshal(b, &ws)
			if s != ws {
				t.Fatalf("invalid payload %q kept as %q, want %q", data, s, ws)
			}
			want.Data = a.Data
		}
		if !reflect.DeepEqual(a, want) {
			t.Fatalf("wrote %+v\nread  %+v\nwant  %+v\nline %q", e, a, want, line)
		}
	})
}

// TestSync: an event Sync returned for is in the file on disk, read by another
// reader while the writer is still open and its periodic flush is off.
func TestSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	lw, err := CreateLog(path, WithFlushInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	b := NewBus(WithLogger(quiet))
	sub := b.Subscribe("log")
	go func() { _ = lw.Record(context.Background(), sub) }()

	for i := range 50 {
		b.Publish(New(Log, "", "noise", LogLine{Message: fmt.Sprint(i)}))
	}
	seq := b.Emit(New(FaultUndo, "c1", "fault/down", Undo{ID: "f1", Kind: "scale"}))
	if seq != 51 {
		t.Fatalf("Emit gave seq %d, want 51", seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lw.Sync(ctx, seq); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	evs, err := ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 51 || evs[50].Type != FaultUndo {
		t.Fatalf("after Sync the file holds %d events, want the undo record as event 51", len(evs))
	}
	var u Undo
	if err := json.Unmarshal(evs[50].Data, &u); err != nil || u.ID != "f1" {
		t.Errorf("undo record reads back as %+v (%v)", u, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncRefuses: Sync does not vouch for an event the log skipped, one it
// never got before closing, or one not yet written when ctx ends.
func TestSyncRefuses(t *testing.T) {
	lw := NewLogWriter(io.Discard, WithFlushInterval(0))
	for _, seq := range []uint64{1, 2, 7, 8} {
		if err := lw.Write(Event{Seq: seq, Type: Log, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Sync(context.Background(), 2); err != nil {
		t.Errorf("Sync(2) of a written event: %v", err)
	}
	if err := lw.Sync(context.Background(), 5); err == nil || !strings.Contains(err.Error(), "lost event 5") {
		t.Errorf("Sync(5) of a skipped event: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := lw.Sync(ctx, 9); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync(9) of an event never written: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- lw.Sync(context.Background(), 10) }()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed before event 10") {
			t.Errorf("Sync(10) across Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sync did not return within 10s of Close")
	}
	if err := lw.Sync(context.Background(), 0); err == nil {
		t.Error("Sync(0) (an event a closed bus did not publish) succeeded")
	}
}
