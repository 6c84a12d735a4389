package load

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// resultsFile writes results as `vegeta attack -output` does: one gob stream of
// vegeta.Result values, which `vegeta report`, `vegeta plot` and vegeta.NewDecoder read.
type resultsFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	enc  vegeta.Encoder
	err  error // the first write error; writing stops there
}

func createResultsFile(path string) (*resultsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create load results file: %w (check that its directory exists and is writable)", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &resultsFile{path: path, f: f, w: w, enc: vegeta.NewEncoder(w)}, nil
}

// write appends r without its body. It reports only the first error, once.
func (rf *resultsFile) write(r *vegeta.Result) error {
	if rf.err != nil {
		return nil
	}
	r.Body = nil
	if err := rf.enc.Encode(r); err != nil {
		rf.err = fmt.Errorf("write load results file %s: %w", rf.path, err)
		return rf.err
	}
	return nil
}

// close flushes and closes the file, returning the first error of its life.
func (rf *resultsFile) close() error {
	flushErr := rf.w.Flush()
	closeErr := rf.f.Close()
	if rf.err != nil {
		return rf.err
	}
	if err := errors.Join(flushErr, closeErr); err != nil {
		return fmt.Errorf("write load results file %s: %w", rf.path, err)
	}
	return nil
}
