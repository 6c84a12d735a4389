// Command ci-example runs the reusable drill workflow (.github/workflows/drill.yml)
// as far as it runs without GitHub: it copies the caller of docs/ci.md
// (docs/ci-example/failover-drills.yml) into an empty repository layout in a
// temporary directory with one scenario under drills/, lints it with actionlint,
// and runs the reusable workflow's `run:` scripts with bash, in order, with the
// GITHUB_* files and variables a runner gives them (GITHUB_OUTPUT, GITHUB_PATH,
// GITHUB_ENV, GITHUB_STEP_SUMMARY). Its `uses:` steps are GitHub's own actions:
// actions/cache is emulated by a directory (so the run history's key and path
// are exercised), the others are skipped and said so.
//
// drill is installed the way the workflow installs it, go install
// github.com/meshdrill/drill/cmd/drill@VERSION, from a module proxy in a local
// directory that serves this checkout as the caller's drill-version.
//
// It runs the caller twice: as a pull request (validate-only) and as the
// nightly schedule. A drill on kind needs Docker and minutes, so on the
// schedule the step that runs the drills reports a recorded run
// (pkg/report/testdata/seed) with drill report instead; -drill runs the
// scenario for real with the local provider (a few minutes, two cores).
//
//	go run ./hack/ci-example [-keep] [-drill]
package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/meshdrill/drill/pkg/history"
)

const (
	module       = "github.com/meshdrill/drill"
	exampleFile  = "docs/ci-example/failover-drills.yml"
	reusableFile = ".github/workflows/drill.yml"
	scenarioFile = "scenarios/reviews-failover.yaml"
	recordedRun  = "pkg/report/testdata/seed/events.jsonl"
)

// localVersion is the version this checkout is installed as: no release has
// it, and two runs at once (two checkouts) do not share it.
var localVersion = fmt.Sprintf("v0.0.0-ci-example.%d", os.Getpid())

func main() {
	keep := flag.Bool("keep", false, "keep the temporary repository and print where it is")
	realDrill := flag.Bool("drill", false, "run the drill with the local provider instead of reporting a recorded run")
	flag.Parse()
	root, err := os.Getwd()
	if err == nil {
		err = Run(root, os.Stdout, Options{Keep: *keep, RealDrill: *realDrill})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ci-example:", err)
		os.Exit(1)
	}
}

// Options are Run's knobs.
type Options struct {
	Keep      bool // keep the temporary directory
	RealDrill bool // run the drill with the local provider
}

// workflow is the part of a GitHub workflow file the harness reads.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]job `yaml:"jobs"`
}

type job struct {
	Uses  string            `yaml:"uses"`
	With  map[string]any    `yaml:"with"`
	Env   map[string]string `yaml:"env"`
	Steps []step            `yaml:"steps"`
}

type step struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
	Run  string            `yaml:"run"`
}

func (s step) title() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Uses
}

// Run exercises the example from the checkout at root, logging to log.
func Run(root string, log io.Writer, o Options) error {
	tmp, err := os.MkdirTemp("", "drill-ci-example-")
	if err != nil {
		return err
	}
	if o.Keep {
		fmt.Fprintln(log, "keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// The caller's repository: its workflow and one scenario.
	repo := filepath.Join(tmp, "repo")
	callerPath := filepath.Join(repo, ".github/workflows/failover-drills.yml")
	if err := copyFile(filepath.Join(root, exampleFile), callerPath); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, scenarioFile), filepath.Join(repo, "drills", filepath.Base(scenarioFile))); err != nil {
		return err
	}
	fmt.Fprintln(log, "== actionlint on the caller")
	lint := exec.Command(filepath.Join(root, "hack/actionlint.sh"), callerPath)
	lint.Stdout, lint.Stderr = log, log
	if err := lint.Run(); err != nil {
		return fmt.Errorf("actionlint on %s: %w", exampleFile, err)
	}

	var caller workflow
	if err := readYAML(callerPath, &caller); err != nil {
		return err
	}
	var callerJob *job
	for name, j := range caller.Jobs {
		if strings.HasPrefix(j.Uses, module[len("github.com/"):]+"/"+reusableFile+"@") {
			j := j
			callerJob = &j
			fmt.Fprintf(log, "== job %s calls %s\n", name, j.Uses)
		}
	}
	if callerJob == nil {
		return fmt.Errorf("%s: no job uses %s", exampleFile, reusableFile)
	}
	var reusable workflow
	if err := readYAML(filepath.Join(root, reusableFile), &reusable); err != nil {
		return err
	}
	call, _ := reusable.On["workflow_call"].(map[string]any)
	declared, _ := call["inputs"].(map[string]any)
	if len(declared) == 0 || len(reusable.Jobs) != 1 {
		return fmt.Errorf("%s: want on.workflow_call.inputs and one job", reusableFile)
	}
	var rjob job
	for _, j := range reusable.Jobs {
		rjob = j
	}

	if v, _ := callerJob.With["drill-version"].(string); v == "" {
		return fmt.Errorf("%s: with: drill-version is not set", exampleFile)
	} else {
		// This checkout is served as a version no release has, so that the
		// module cache it lands in holds nothing a real drill-version would
		// find; it is removed from the cache before and after.
		fmt.Fprintf(log, "== drill-version %s: this checkout, served as %s\n", v, localVersion)
		callerJob.With["drill-version"] = localVersion
	}
	version := localVersion
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	forget := func() error { return forgetVersion(strings.TrimSpace(string(modcache)), version) }
	if err := forget(); err != nil {
		return err
	}
	defer forget()
	proxy := filepath.Join(tmp, "proxy")
	if err := buildProxy(root, proxy, version); err != nil {
		return fmt.Errorf("module proxy: %w", err)
	}

	cache := filepath.Join(tmp, "actions-cache")
	r := &runner{root: root, repo: repo, tmp: tmp, proxy: proxy, cache: cache, log: log, opts: o}
	// A history left by an earlier run of the schedule, under the key prefix the
	// workflow restores from: a real (empty) run history, as drill made it.
	earlier := filepath.Join(cache, "drill-history-kind-earlier", "history.db")
	if err := os.MkdirAll(filepath.Dir(earlier), 0o755); err != nil {
		return err
	}
	h, err := history.Open(context.Background(), earlier)
	if err != nil {
		return fmt.Errorf("the earlier run history: %w", err)
	}
	if err := h.Close(); err != nil {
		return err
	}
	for _, event := range []string{"pull_request", "schedule"} {
		fmt.Fprintf(log, "== %s\n", event)
		if err := r.run(event, callerJob, declared, rjob, version); err != nil {
			return fmt.Errorf("%s: %w", event, err)
		}
	}
	return nil
}

// runner runs the reusable workflow's steps.
type runner struct {
	root, repo, tmp, proxy, cache string
	log                           io.Writer
	opts                          Options
}

// run runs the job once for event, with the caller's inputs.
func (r *runner) run(event string, caller *job, declared map[string]any, rjob job, version string) error {
	ctx := &exprContext{github: map[string]string{
		"event_name": event, "run_id": "4242", "run_attempt": "1", "repository": "example/drills",
	}, inputs: map[string]string{}, steps: map[string]map[string]string{}}
	for name, d := range declared {
		if m, ok := d.(map[string]any); ok && m["default"] != nil {
			ctx.inputs[name] = fmt.Sprint(m["default"])
		}
	}
	for name, v := range caller.With {
		if _, ok := declared[name]; !ok {
			return fmt.Errorf("the caller passes input %q, which %s does not declare", name, reusableFile)
		}
		val, err := ctx.eval(fmt.Sprint(v))
		if err != nil {
			return fmt.Errorf("with: %s: %w", name, err)
		}
		ctx.inputs[name] = val
	}
	runDir := filepath.Join(r.tmp, "run-"+event)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	summary := filepath.Join(runDir, "step-summary.md")
	pathFile := filepath.Join(runDir, "github-path")
	envFile := filepath.Join(runDir, "github-env")
	for _, f := range []string{summary, pathFile, envFile} {
		if err := writeFile(f, nil); err != nil {
			return err
		}
	}
	gopath := filepath.Join(runDir, "gopath")
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	base := map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux", "RUNNER_TEMP": runDir,
		"GITHUB_WORKSPACE": r.repo, "GITHUB_EVENT_NAME": event, "GITHUB_RUN_ID": ctx.github["run_id"],
		"GITHUB_STEP_SUMMARY": summary, "GITHUB_PATH": pathFile, "GITHUB_ENV": envFile,
		// go install from this checkout served as a release; the other modules
		// from the module cache (verified against the checksum database when
		// they were downloaded), the network never.
		"GOPATH": gopath, "GOMODCACHE": strings.TrimSpace(string(modcache)),
		"GOPROXY": "file://" + r.proxy + ",off", "GOSUMDB": "off", "GOFLAGS": "",
	}
	jobEnv := map[string]string{}
	for k, v := range rjob.Env {
		val, err := ctx.eval(v)
		if err != nil {
			return fmt.Errorf("job env %s: %w", k, err)
		}
		jobEnv[k] = val
	}
	outDir := filepath.Join(r.repo, jobEnv["OUT_DIR"])
	_ = os.RemoveAll(outDir)

	for i, st := range rjob.Steps {
		ok := true
		if st.If != "" {
			if ok, err = ctx.cond(st.If); err != nil {
				return fmt.Errorf("step %d (%s): if: %w", i+1, st.title(), err)
			}
		}
		if !ok {
			fmt.Fprintf(r.log, "-- %s: skipped (if: %s)\n", st.title(), st.If)
			continue
		}
		if st.Uses != "" {
			if err := r.uses(ctx, st); err != nil {
				return fmt.Errorf("step %s: %w", st.title(), err)
			}
			continue
		}
		if strings.Contains(st.Run, "${{") {
			return fmt.Errorf("step %s: an expression inside run: (pass it through env:)", st.title())
		}
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range jobEnv {
			env[k] = v
		}
		extra, err := readLines(envFile)
		if err != nil {
			return err
		}
		for _, kv := range extra {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		for k, v := range st.Env {
			if env[k], err = ctx.eval(v); err != nil {
				return fmt.Errorf("step %s: env %s: %w", st.title(), k, err)
			}
		}
		paths, err := readLines(pathFile)
		if err != nil {
			return err
		}
		env["PATH"] = strings.Join(append(reverse(paths), os.Getenv("PATH")), string(os.PathListSeparator))
		out := filepath.Join(runDir, fmt.Sprintf("output-%d", i))
		if err := writeFile(out, nil); err != nil {
			return err
		}
		env["GITHUB_OUTPUT"] = out

		script := st.Run
		if strings.HasPrefix(strings.TrimSpace(script), "sudo ") {
			fmt.Fprintf(r.log, "-- %s: skipped (it changes the GitHub runner's kernel settings with sudo)\n", st.title())
			continue
		}
		if st.ID == "run" && event == "schedule" && !r.opts.RealDrill {
			// No clusters here: a recorded run of the same scenario is reported as
			// drill run would have written it, with drill report.
			fmt.Fprintf(r.log, "-- %s: a recorded run (%s) reported instead of drill run on %s\n", st.title(), recordedRun, env["PROVIDER"])
			dir := filepath.Join(outDir, "reviews-failover-20261124-101500")
			if err := copyFile(filepath.Join(r.root, recordedRun), filepath.Join(dir, "events.jsonl")); err != nil {
				return err
			}
			script = fmt.Sprintf("code=0\ndrill report --quiet %q || code=$?\necho \"exit-code=$code\" >> \"$GITHUB_OUTPUT\"\n", dir)
		}
		if st.ID == "run" && r.opts.RealDrill {
			env["PROVIDER"] = "local"
		}
		fmt.Fprintf(r.log, "-- %s\n", st.title())
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = r.repo
		cmd.Env = flatten(env)
		cmd.Stdout, cmd.Stderr = r.log, r.log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("step %s: %w", st.title(), err)
		}
		if st.ID != "" {
			outputs, err := readLines(out)
			if err != nil {
				return err
			}
			ctx.steps[st.ID] = map[string]string{}
			for _, kv := range outputs {
				if k, v, ok := strings.Cut(kv, "="); ok {
					ctx.steps[st.ID][k] = v
				}
			}
		}
	}
	return r.check(event, ctx, summary, outDir, gopath, version)
}

// check asserts what a run of the job leaves behind.
func (r *runner) check(event string, ctx *exprContext, summary, outDir, gopath, version string) error {
	got, err := exec.Command(filepath.Join(gopath, "bin", "drill"), "version").Output()
	if err != nil {
		return fmt.Errorf("the installed drill: %w", err)
	}
	if want := "drill " + version + "\n"; string(got) != want {
		return fmt.Errorf("the installed drill says %q, want %q", got, want)
	}
	text, err := os.ReadFile(summary)
	if err != nil {
		return err
	}
	want := "no drill ran (validate-only)"
	if event == "schedule" {
		want = "PASS: drill reviews-failover"
	}
	if !strings.Contains(string(text), want) {
		return fmt.Errorf("the job summary lacks %q:\n%s", want, text)
	}
	if code := ctx.steps["run"]["exit-code"]; code != "0" {
		return fmt.Errorf("step run: exit-code %q, want 0", code)
	}
	if event == "schedule" {
		junit, _ := filepath.Glob(filepath.Join(outDir, "*", "junit.xml"))
		if len(junit) != 1 {
			return fmt.Errorf("want one junit.xml under %s, found %v", outDir, junit)
		}
		saved, _ := filepath.Glob(filepath.Join(r.cache, "drill-history-kind-4242-1", "history.db"))
		if len(saved) != 1 {
			return fmt.Errorf("the run history was not saved under the run's key")
		}
	}
	fmt.Fprintf(r.log, "ok: %s: drill %s installed, job summary written, exit code 0\n", event, version)
	return nil
}

// uses runs a step of one of GitHub's actions: actions/cache's restore and
// save with a directory as the cache, the others skipped.
func (r *runner) uses(ctx *exprContext, st step) error {
	action, _, _ := strings.Cut(st.Uses, "@")
	with := map[string]string{}
	for k, v := range st.With {
		val, err := ctx.eval(v)
		if err != nil {
			return fmt.Errorf("with: %s: %w", k, err)
		}
		with[k] = val
	}
	switch action {
	case "actions/cache/restore":
		path := filepath.Join(r.repo, with["path"])
		hit := ""
		if _, err := os.Stat(filepath.Join(r.cache, with["key"])); err == nil {
			hit = with["key"]
		} else if prefix := with["restore-keys"]; prefix != "" {
			keys, _ := filepath.Glob(filepath.Join(r.cache, prefix+"*"))
			sort.Strings(keys)
			if len(keys) > 0 {
				hit = filepath.Base(keys[len(keys)-1])
			}
		}
		if hit == "" {
			fmt.Fprintf(r.log, "-- %s: cache miss for %s\n", st.title(), with["key"])
			return nil
		}
		fmt.Fprintf(r.log, "-- %s: restored %s from key %s\n", st.title(), with["path"], hit)
		return copyFile(filepath.Join(r.cache, hit, filepath.Base(path)), path)
	case "actions/cache/save":
		path := filepath.Join(r.repo, with["path"])
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(r.log, "-- %s: nothing at %s to save\n", st.title(), with["path"])
			return nil
		}
		fmt.Fprintf(r.log, "-- %s: saved %s under key %s\n", st.title(), with["path"], with["key"])
		return copyFile(path, filepath.Join(r.cache, with["key"], filepath.Base(path)))
	}
	fmt.Fprintf(r.log, "-- %s: skipped (%s runs on GitHub only)\n", st.title(), st.Uses)
	return nil
}

// exprContext evaluates the few GitHub expressions the workflows use: a
// context value (inputs.X, github.X, steps.ID.outputs.X), its negation, a
// comparison with a string literal, always(), and && of those. Anything else
// is an error, so a workflow that outgrows the harness says so.
type exprContext struct {
	github, inputs map[string]string
	steps          map[string]map[string]string
}

var exprRE = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// eval replaces every ${{ … }} in s with its value.
func (c *exprContext) eval(s string) (string, error) {
	var err error
	out := exprRE.ReplaceAllStringFunc(s, func(m string) string {
		v, e := c.value(exprRE.FindStringSubmatch(m)[1])
		if e != nil {
			err = e
		}
		return v
	})
	return out, err
}

// cond evaluates an if: condition.
func (c *exprContext) cond(s string) (bool, error) {
	s = strings.TrimSpace(s)
	if m := exprRE.FindStringSubmatch(s); m != nil && m[0] == s {
		s = m[1]
	}
	for _, term := range strings.Split(s, "&&") {
		v, err := c.value(strings.TrimSpace(term))
		if err != nil {
			return false, err
		}
		if !truthy(v) {
			return false, nil
		}
	}
	return true, nil
}

func truthy(v string) bool { return v != "" && v != "false" && v != "0" }

func (c *exprContext) value(e string) (string, error) {
	e = strings.TrimSpace(e)
	switch {
	case e == "always()":
		return "true", nil
	case strings.HasPrefix(e, "!"):
		v, err := c.value(e[1:])
		return fmt.Sprint(!truthy(v)), err
	}
	for _, op := range []string{"==", "!="} {
		if a, b, ok := strings.Cut(e, op); ok {
			left, err := c.value(a)
			if err != nil {
				return "", err
			}
			lit := strings.TrimSpace(b)
			if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
				return "", fmt.Errorf("%q: only comparisons with a 'string' are evaluated here", e)
			}
			return fmt.Sprint((left == lit[1:len(lit)-1]) == (op == "==")), nil
		}
	}
	parts := strings.Split(e, ".")
	switch {
	case len(parts) == 2 && parts[0] == "inputs":
		return c.inputs[parts[1]], nil
	case len(parts) == 2 && parts[0] == "github":
		v, ok := c.github[parts[1]]
		if !ok {
			return "", fmt.Errorf("%q: github.%s is not emulated", e, parts[1])
		}
		return v, nil
	case len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs":
		return c.steps[parts[1]][parts[3]], nil
	}
	return "", fmt.Errorf("%q: not an expression this harness evaluates", e)
}

// buildProxy writes a module proxy (GOPROXY=file://dir) serving the module in
// root, as git tracks it, at version.
func buildProxy(root, dir, version string) error {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	// Directories holding a go.mod of their own are other modules.
	var nested []string
	for _, f := range files {
		if filepath.Base(f) == "go.mod" && f != "go.mod" {
			nested = append(nested, filepath.Dir(f)+"/")
		}
	}
	at := filepath.Join(dir, module, "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, f := range files {
		skip := false
		for _, n := range nested {
			skip = skip || strings.HasPrefix(f, n)
		}
		fi, err := os.Lstat(filepath.Join(root, f))
		if skip || err != nil || !fi.Mode().IsRegular() {
			continue // another module, deleted in the work tree, or a symlink
		}
		w, err := zw.Create(module + "@" + version + "/" + f)
		if err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(root, f))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	info, _ := json.Marshal(map[string]string{"Version": version, "Time": "2026-12-01T00:00:00Z"})
	for name, data := range map[string][]byte{
		"list": []byte(version + "\n"), version + ".info": info, version + ".mod": gomod, version + ".zip": zbuf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// forgetVersion removes version of drill's module from the module cache.
func forgetVersion(modcache, version string) error {
	for _, p := range []string{
		filepath.Join(modcache, module+"@"+version),
		filepath.Join(modcache, "cache", "download", module, "@v", version+".info"),
		filepath.Join(modcache, "cache", "download", module, "@v", version+".mod"),
		filepath.Join(modcache, "cache", "download", module, "@v", version+".zip"),
		filepath.Join(modcache, "cache", "download", module, "@v", version+".ziphash"),
		filepath.Join(modcache, "cache", "download", module, "@v", version+".lock"),
	} {
		// The module cache's files are read-only.
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(path, 0o755)
			}
			return nil
		})
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s from the module cache: %w", p, err)
		}
	}
	// The versions go listed from the proxy.
	list := filepath.Join(modcache, "cache", "download", module, "@v", "list")
	lines, err := readLines(list)
	if err != nil || len(lines) == 0 {
		return err
	}
	var keep []string
	for _, l := range lines {
		if l != version {
			keep = append(keep, l+"\n")
		}
	}
	if len(keep) == 0 {
		return os.Remove(list)
	}
	return os.WriteFile(list, []byte(strings.Join(keep, "")), 0o644)
}

func readYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFile(to, data)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// readLines reads a GITHUB_* file: one entry a line.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// reverse puts the last GITHUB_PATH entry first, as the runner prepends each.
func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// flatten is env over this process's environment, without its GITHUB_*.
func flatten(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := env[name]; !set && !strings.HasPrefix(name, "GITHUB_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
