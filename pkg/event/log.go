package event

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// LogFile is the name of the event log in a run's report directory.
const LogFile = "events.jsonl"

// DefaultFlushInterval is how often a LogWriter pushes buffered lines to its file, so
// that a run killed outright loses at most this much of its record.
const DefaultFlushInterval = 250 * time.Millisecond

// MaxLineSize bounds a line the LogReader accepts, so that a corrupt file without
// newlines cannot make it hold the whole file in memory. Real lines are a few KiB.
const MaxLineSize = 16 << 20

// ErrTruncated is wrapped (in a *LineError) when a log's last line ends without a
// newline and does not parse: the run was stopped while writing it. Every event
// before that line is intact, and ReadLog returns them with this error.
var ErrTruncated = errors.New("event log truncated")

// LineError is an error at one line of an event log.
type LineError struct {
	Name string // the file name, or "event log" for a reader without one
	Line int    // from 1
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// LogWriter writes events as JSON lines, one Event per line, in a fixed field order
// (seq, time, elapsed, type, cluster, source, data). Lines are buffered and flushed
// every DefaultFlushInterval, on Flush and on Close. Safe for concurrent use.
type LogWriter struct {
	name  string
	file  *os.File // set when the LogWriter created the file, which Close then closes
	every time.Duration
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once // closes stop

	mu      sync.Mutex
	bw      *bufio.Writer
	line    []byte
	scratch bytes.Buffer
	written uint64
	err     error // the first write error; later writes return it
	closed  bool
	// lastSeq is the Seq of the last event written, gaps the ranges of Seq the
	// log skipped (events its subscription lost), for Sync; synced wakes Sync.
	lastSeq  uint64
	gaps     [][2]uint64
	manyGaps bool // more gaps than maxGaps: Sync cannot tell, and says so
	synced   *sync.Cond
}

// maxGaps bounds the skipped ranges a LogWriter remembers.
const maxGaps = 1024

// LogOption configures a LogWriter.
type LogOption func(*LogWriter)

// WithFlushInterval sets how often buffered lines are written out (default
// DefaultFlushInterval); 0 leaves flushing to Flush, Close and a full buffer.
func WithFlushInterval(d time.Duration) LogOption {
	return func(w *LogWriter) { w.every = d }
}

// NewLogWriter writes the log to w. Close flushes but does not close w. Errors name w
// by its Name method if it has one (an *os.File does).
func NewLogWriter(w io.Writer, opts ...LogOption) *LogWriter {
	lw := &LogWriter{
		name:  nameOf(w),
		every: DefaultFlushInterval,
		bw:    bufio.NewWriterSize(w, 64<<10),
		line:  make([]byte, 0, 1024),
	}
	lw.synced = sync.NewCond(&lw.mu)
	for _, o := range opts {
		o(lw)
	}
	if lw.every > 0 {
		lw.stop, lw.done = make(chan struct{}), make(chan struct{})
		go lw.flushLoop()
	}
	return lw
}

// CreateLog creates the log file at path (normally DIR/events.jsonl). It refuses to
// replace an existing file: a run's record is never overwritten.
func CreateLog(path string, opts ...LogOption) (*LogWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create event log: %w; write the run to a new report directory or move the old one away", err)
		}
		return nil, fmt.Errorf("create event log: %w", err)
	}
	lw := NewLogWriter(f, opts...)
	lw.file = f
	return lw, nil
}

func nameOf(v any) string {
	if n, ok := v.(interface{ Name() string }); ok && n.Name() != "" {
		return n.Name()
	}
	return "event log"
}

func (w *LogWriter) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			// Errors are kept in w.err and returned by the next Write, Flush or Close.
			_ = w.Flush()
		}
	}
}

// Write appends one event to the log. Data is written compacted; Data that is not
// valid JSON is written as a JSON string holding those bytes, so that the line stays
// readable and the bad payload stays visible to whoever decodes it.
func (w *LogWriter) Write(e Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write event %d to %s: the log is closed", e.Seq, w.name)
	}
	if w.err != nil {
		return w.err
	}
	line, err := w.appendEvent(w.line[:0], e)
	if err != nil {
		return fmt.Errorf("write event %d to %s: %w", e.Seq, w.name, err)
	}
	w.line = line
	if _, err := w.bw.Write(line); err != nil {
		w.err = fmt.Errorf("write event log %s: %w", w.name, err)
		w.synced.Broadcast()
		return w.err
	}
	w.written++
	if w.lastSeq != 0 && e.Seq > w.lastSeq+1 {
		if len(w.gaps) < maxGaps {
			w.gaps = append(w.gaps, [2]uint64{w.lastSeq + 1, e.Seq - 1})
		} else {
			w.manyGaps = true
		}
	}
	if e.Seq > w.lastSeq {
		w.lastSeq = e.Seq
	}
	w.synced.Broadcast()
	return nil
}

// Sync waits until the event numbered seq (the Seq Bus.Emit returned) has been
// written, then flushes the log and, for a log made by CreateLog, syncs its file
// to the disk: when Sync returns nil the event survives the process being killed.
// It fails if the log lost that event (its subscription fell behind), met a write
// error, was closed first, or ctx ended first.
func (w *LogWriter) Sync(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return fmt.Errorf("sync %s: the event was not published (the bus is closed)", w.name)
	}
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.synced.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.lastSeq < seq && w.err == nil && !w.closed && ctx.Err() == nil {
		w.synced.Wait()
	}
	switch {
	case w.err != nil:
		return w.err
	case w.lastSeq < seq && w.closed:
		return fmt.Errorf("sync %s: the log was closed before event %d was written", w.name, seq)
	case w.lastSeq < seq:
		return fmt.Errorf("sync %s: event %d not written yet: %w", w.name, seq, ctx.Err())
	case w.manyGaps:
		return fmt.Errorf("sync %s: the log lost too many events to tell whether event %d is among them", w.name, seq)
	}
	for _, g := range w.gaps {
		if seq >= g[0] && seq <= g[1] {
			return fmt.Errorf("sync %s: the log lost event %d (its subscription fell behind)", w.name, seq)
		}
	}
	if err := w.flushLocked(); err != nil {
		return err
	}
	if w.file != nil {
		if err := w.file.Sync(); err != nil {
			return fmt.Errorf("sync event log %s: %w", w.name, err)
		}
	}
	return nil
}

// Flush writes buffered lines to the underlying writer.
func (w *LogWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *LogWriter) flushLocked() error {
	if w.err != nil || w.closed {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("write event log %s: %w", w.name, err)
	}
	return w.err
}

// Written is the number of events written so far.
func (w *LogWriter) Written() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// Close flushes the log, stops the periodic flush and, for a log made by CreateLog,
// syncs and closes the file. It returns the first error the writer met. Closing twice
// is harmless.
func (w *LogWriter) Close() error {
	if w.stop != nil {
		w.once.Do(func() { close(w.stop) })
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	err := w.flushLocked()
	w.closed = true
	w.synced.Broadcast()
	if w.file != nil {
		// Sync so that a report directory copied right after the run holds the
		// whole record.
		if serr := w.file.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync event log %s: %w", w.name, serr)
		}
		if cerr := w.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close event log %s: %w", w.name, cerr)
		}
	}
	return err
}

// Record writes every event sub receives until the subscription closes (when the Bus
// closes), then flushes. It returns the first write error at once, having
// unsubscribed, so that the caller can stop a run whose record is broken. If the
// subscription lost events the log has gaps in Seq, and Record returns an error
// wrapping ErrDropped after writing the rest (the Bus's drop report included).
//
// Cancelling ctx stops recording at once: give Record a context that outlives the
// run's own, so that the events published while a run aborts are still written.
//
// Subscribe before starting Record in its goroutine, so that no event is published
// before the log's subscription exists:
//
//	sub := bus.Subscribe("log")
//	go func() { errc <- lw.Record(ctx, sub) }()
func (w *LogWriter) Record(ctx context.Context, sub *Subscription) error {
	defer sub.Unsubscribe()
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				if err := w.Flush(); err != nil {
					return err
				}
				if d := sub.Dropped(); d > 0 {
					return fmt.Errorf("event log %s lacks %d events: subscriber %q fell behind its buffer of %d: %w",
						w.name, d, sub.Name(), sub.Buffer(), ErrDropped)
				}
				return nil
			}
			if err := w.Write(e); err != nil {
				return err
			}
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("record events to %s: %w", w.name, ctx.Err()), w.Flush())
		}
	}
}

// appendEvent encodes e as one JSON line. It is written by hand rather than with
// encoding/json so that Data is kept byte for byte (encoding/json would escape HTML
// characters in it) and a line costs no allocation; the tests check that
// encoding/json reads back exactly what was written.
func (w *LogWriter) appendEvent(b []byte, e Event) ([]byte, error) {
	// RFC 3339 has four-digit years; encoding/json refuses others too.
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("time %v is outside years 0-9999", e.Time)
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","elapsed":`...)
	b = strconv.AppendInt(b, int64(e.Elapsed), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	if e.Cluster != "" {
		b = append(b, `,"cluster":`...)
		b = appendString(b, e.Cluster)
	}
	if e.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, e.Source)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = w.appendData(b, e.Data)
	}
	return append(b, "}\n"...), nil
}

func (w *LogWriter) appendData(b []byte, data []byte) []byte {
	if !json.Valid(data) {
		return appendString(b, string(data))
	}
	if bytes.IndexAny(data, " \t\r\n") < 0 {
		return append(b, data...) // already compact, the common case (json.Marshal output)
	}
	w.scratch.Reset()
	_ = json.Compact(&w.scratch, data) // cannot fail: data is valid
	return append(b, w.scratch.Bytes()...)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as with
// encoding/json.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// LogReader reads an event log line by line. It checks that each line is an event
// with a Seq and a Type and that Seq increases; gaps in Seq are allowed (they are
// events a slow subscriber lost, reported in the log by the Bus). Blank lines are
// skipped. Unknown fields are ignored, so that logs from newer versions still read.
type LogReader struct {
	name    string
	br      *bufio.Reader
	buf     []byte
	line    int
	n       int
	lastSeq uint64
	err     error
}

// NewLogReader reads a log from r. Errors name r by its Name method if it has one.
func NewLogReader(r io.Reader) *LogReader {
	return &LogReader{name: nameOf(r), br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next event, or io.EOF after the last one. A line that is not an
// event gives a *LineError; a last line cut short gives one wrapping ErrTruncated.
// After an error, Next keeps returning it.
func (r *LogReader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		line, complete, err := r.readLine()
		if err != nil {
			r.err = err
			return Event{}, err
		}
		r.line++
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 {
			if !complete {
				r.err = io.EOF
				return Event{}, io.EOF
			}
			continue
		}
		e, err := r.parse(trimmed)
		if err != nil {
			if !complete {
				err = fmt.Errorf("the last line ends without a newline after %d bytes: the run was stopped while writing it; the %d events before it are intact: %w",
					len(line), r.n, ErrTruncated)
			}
			r.err = &LineError{Name: r.name, Line: r.line, Err: err}
			return Event{}, r.err
		}
		r.n++
		r.lastSeq = e.Seq
		return e, nil
	}
}

// readLine returns the next line without its newline, and whether it had one.
func (r *LogReader) readLine() (line []byte, complete bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.buf)+len(chunk) > MaxLineSize {
			return nil, false, &LineError{Name: r.name, Line: r.line + 1,
				Err: fmt.Errorf("line longer than %d bytes: this is not a drill event log, or it is corrupt", MaxLineSize)}
		}
		r.buf = append(r.buf, chunk...)
		switch {
		case err == nil:
			return r.buf[:len(r.buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) == 0 {
				return nil, false, io.EOF
			}
			return r.buf, false, nil
		default:
			return nil, false, fmt.Errorf("read %s after line %d: %w", r.name, r.line, err)
		}
	}
}

func (r *LogReader) parse(line []byte) (Event, error) {
	var e Event
	if line[0] != '{' {
		return e, errors.New("not an event: a line must be a JSON object")
	}
	if err := json.Unmarshal(line, &e); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return e, fmt.Errorf("not an event: invalid JSON at byte %d: %w", se.Offset, err)
		}
		return e, fmt.Errorf("not an event: %w", err)
	}
	switch {
	case e.Seq == 0:
		return e, errors.New("event has no seq; every event in a log is numbered from 1")
	case e.Type == "":
		return e, fmt.Errorf("event %d has no type", e.Seq)
	case e.Seq <= r.lastSeq:
		return e, fmt.Errorf("event %d follows event %d: a log's events are in increasing seq order; was it edited or were two logs joined?", e.Seq, r.lastSeq)
	}
	return e, nil
}

// ReadLog reads the whole log at path. On an error it also returns the events read
// before it: with a truncated log (errors.Is(err, ErrTruncated)) that is the whole
// record up to the moment the run was stopped.
func ReadLog(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read event log: %w; a run's report directory holds its log as %s", err, LogFile)
	}
	defer f.Close()
	return ReadLogFrom(f)
}

// ReadLogFrom reads an event log from r (standard input, a pipe) as ReadLog
// reads a file: every event up to the end, or up to a bad or cut line with
// its error.
func ReadLogFrom(r io.Reader) ([]Event, error) {
	var evs []Event
	lr := NewLogReader(r)
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
