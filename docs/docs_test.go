package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard"
)

// read returns a file of the repository, relative to docs/.
func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// markdownFiles are the repository's documents, relative to docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

// slug is GitHub's anchor for a heading: lower case, punctuation dropped,
// spaces to '-'.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(doc string) map[string]bool {
	m := map[string]bool{}
	for _, h := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(doc, ""), -1) {
		m[slug(strings.ReplaceAll(h[1], "`", ""))] = true
	}
	return m
}

// TestLinksStayInTheRepository: a clone has only the repository, so every
// relative link must name a file in it (and an anchor that exists); none
// may climb out of it, as the old ../shared/DESIGN.md link did.
func TestLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range markdownFiles(t) {
		doc := read(t, f)
		for _, m := range linkRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(doc, ""), -1) {
			link := m[1]
			if strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(link, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
				abs, err := filepath.Abs(target)
				if err != nil || (abs != root && !strings.HasPrefix(abs, root+string(filepath.Separator))) {
					t.Errorf("%s: link %q leaves the repository", f, link)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: %v", f, link, err)
					continue
				}
			}
			if anchor != "" {
				if !strings.HasSuffix(target, ".md") {
					continue
				}
				if !anchors(read(t, target))[anchor] {
					t.Errorf("%s: link %q: no heading #%s in %s", f, link, anchor, target)
				}
			}
		}
	}
}

// TestREADMEIsShort keeps the README what a newcomer finishes: at most
// about 250 lines, in the order of issue 20, with the architecture page
// issue 16 asks for before the links.
func TestREADMEIsShort(t *testing.T) {
	readme := read(t, "../README.md")
	if n := strings.Count(readme, "\n"); n > 250 {
		t.Errorf("README.md has %d lines; keep it at most 250 and move detail to docs/", n)
	}
	var got []string
	for _, h := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(fenceRE.ReplaceAllString(readme, ""), -1) {
		got = append(got, h[1])
	}
	want := []string{"Two commands", "Quick start: watch it come alive", "The agent", "Resetting the demo", "Troubleshooting", "Architecture", "More"}
	if !slices.Equal(got, want) {
		t.Errorf("README sections = %q, want %q", got, want)
	}
}

// TestCIRunsTheREADMETestCommand: the README promises that .ci/run runs
// exactly its test command.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	readme := read(t, "../README.md")
	_, after, ok := strings.Cut(readme, "Run the tests")
	if !ok {
		t.Fatal("README.md: no \"Run the tests\"")
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)\n```").FindStringSubmatch(after)
	if block == nil {
		t.Fatal("README.md: no command block after \"Run the tests\"")
	}
	cmd := strings.TrimSpace(block[1])
	ci := read(t, "../.ci/run")
	_, rest, ok := strings.Cut(ci, `log "tests (the README's test command)"`)
	if !ok {
		t.Fatal(`.ci/run: no log "tests (the README's test command)" step`)
	}
	line, _, _ := strings.Cut(strings.TrimLeft(rest, "\n"), "\n")
	if strings.TrimSpace(line) != cmd {
		t.Errorf(".ci/run runs %q after its test step, the README says %q", strings.TrimSpace(line), cmd)
	}
}

// tableRows returns the cells of every row of the markdown tables in doc
// whose header starts with the given cells.
func tableRows(doc string, header ...string) [][]string {
	var rows [][]string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case len(cells) >= len(header) && slices.Equal(cells[:len(header)], header):
			in = true
		case in && strings.HasPrefix(cells[0], "---"):
		case in:
			rows = append(rows, cells)
		}
	}
	return rows
}

var codeRE = regexp.MustCompile("`([^`]+)`")

// codes returns the `quoted` names of a cell.
func codes(cell string) []string {
	var out []string
	for _, m := range codeRE.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestSettingsTables: the configuration tables of docs/operations.md name
// exactly the flags and environment variables of switchboard.Settings().
func TestSettingsTables(t *testing.T) {
	rows := tableRows(read(t, "operations.md"), "flag", "env")
	if len(rows) == 0 {
		t.Fatal("operations.md: no settings table (| flag | env | ...)")
	}
	documented := map[string]bool{}
	for _, r := range rows {
		for _, c := range append(codes(r[0]), codes(r[1])...) {
			documented[c] = true
		}
	}
	read := map[string]bool{}
	for _, s := range switchboard.Settings() {
		names := slices.Clone(s.Env)
		if s.Flag != "" {
			names = append(names, "-"+s.Flag)
		}
		for _, n := range names {
			read[n] = true
			if !documented[n] {
				t.Errorf("operations.md: the settings tables do not list %s (%s)", n, s.Usage)
			}
		}
	}
	for n := range documented {
		if !read[n] {
			t.Errorf("operations.md lists %s, which the node does not read", n)
		}
	}
}

// constants returns the string constants of a Go package directory whose
// names start with prefix.
func constants(t *testing.T, dir, prefix string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out[name.Name] = v
					}
				}
				return true
			})
		}
	}
	return out
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func same(t *testing.T, what string, documented, code []string) {
	t.Helper()
	sort.Strings(documented)
	documented = slices.Compact(documented)
	for _, c := range code {
		if !slices.Contains(documented, c) {
			t.Errorf("contract.md: %s %q exists in the code but is not documented", what, c)
		}
	}
	for _, d := range documented {
		if !slices.Contains(code, d) {
			t.Errorf("contract.md: %s %q is documented but the code has no such thing", what, d)
		}
	}
}

// TestContractFrames: the WebSocket tables name every frame type and error
// code of switchboard/protocol, and nothing else.
func TestContractFrames(t *testing.T) {
	contract := read(t, "contract.md")
	var types []string
	for _, r := range append(tableRows(contract, "type", "fields", "when"), tableRows(contract, "type", "fields", "meaning")...) {
		types = append(types, codes(r[0])...)
	}
	same(t, "frame type", types, values(constants(t, "../switchboard/protocol", "Type")))
	var errs []string
	for _, r := range tableRows(contract, "code", "meaning") {
		errs = append(errs, codes(r[0])...)
	}
	same(t, "error code", errs, values(constants(t, "../switchboard/protocol", "Code")))
}

// TestContractMetrics: the metric catalog names every metric a node
// registers, and nothing else.
func TestContractMetrics(t *testing.T) {
	var documented []string
	for _, r := range tableRows(read(t, "contract.md"), "metric", "type", "meaning") {
		documented = append(documented, codes(r[0])...)
	}
	files, err := filepath.Glob("../switchboard/*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\.(?:Counter|Gauge|GaugeFunc|Timing)\("([^"]+)"`)
	var registered []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(read(t, f), -1) {
			registered = append(registered, m[1])
		}
	}
	if len(registered) == 0 {
		t.Fatal("found no metric registrations in switchboard/*.go")
	}
	sort.Strings(registered)
	same(t, "metric", documented, slices.Compact(registered))
}

// otherPrograms are the environment variables the docs name that belong to
// another program than the node, and whose.
var otherPrograms = map[string]string{
	"SWITCHBOARD_URL": "agent", "SWITCHBOARD_TOKEN": "agent", "SWITCHBOARD_AWAY": "agent",
	"SWITCHBOARD_ASCII": "agent", "SWITCHBOARD_AGENT_LOG": "agent", "SWITCHBOARD_SUPERVISOR": "agent",
	"SWITCHBOARD_TEST_AMQP_URL": "tests", "SWITCHBOARD_REQUIRE_AMQP": "tests",
	"SWITCHBOARD_REQUIRE_NGINX": "tests", "SWITCHBOARD_BROKER_RESTART_TEST": "tests",
	"SWITCHBOARD_REQUIRE_SSH": "tests",
}

// TestDocsNameRealSettings: every SWITCHBOARD_ or TWILIO_ variable the
// README and docs/ name is one the node reads (or, listed above, one of
// another program), so no step sets a variable nothing reads.
func TestDocsNameRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range switchboard.Settings() {
		for _, e := range s.Env {
			known[e] = true
		}
	}
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\b(?:SWITCHBOARD|TWILIO)_[A-Z0-9_]*[A-Z0-9]\b`)
	for _, f := range append(files, "../README.md") {
		for _, n := range re.FindAllString(read(t, f), -1) {
			if !known[n] && otherPrograms[n] == "" {
				t.Errorf("%s names %s, which the node does not read (not in switchboard.Settings())", f, n)
				known[n] = true // once
			}
		}
	}
}

// TestContractHTTPRoutes: the HTTP table names every route the node
// serves (switchboard/ and switchboard/nav), and nothing else.
func TestContractHTTPRoutes(t *testing.T) {
	var documented []string
	for _, r := range tableRows(read(t, "contract.md"), "method and path", "answer") {
		documented = append(documented, codes(r[0])...)
	}
	re := regexp.MustCompile(`\.HandleFunc\("([A-Z]+ /[^"]*)"`)
	var served []string
	for _, dir := range []string{"../switchboard", "../switchboard/nav"} {
		files, err := filepath.Glob(dir + "/*.go")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			for _, m := range re.FindAllStringSubmatch(read(t, f), -1) {
				served = append(served, strings.TrimSuffix(m[1], "{$}"))
			}
		}
	}
	if len(served) < 10 {
		t.Fatalf("found only %v routes", served)
	}
	sort.Strings(served)
	same(t, "route", documented, slices.Compact(served))
}

// TestTroubleshootingMessagesExist: the messages the README's
// troubleshooting table quotes are ones the programs really print.
func TestTroubleshootingMessagesExist(t *testing.T) {
	_, table, ok := strings.Cut(read(t, "../README.md"), "## Troubleshooting")
	if !ok {
		t.Fatal("README.md: no Troubleshooting section")
	}
	var source strings.Builder
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			source.WriteString(read(t, p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{
		"too weak to listen on", "the port is taken", "another switchboard node holds this data directory",
		"Twilio is configured without a public URL", "webhook refused: bad signature", "token refused (401)", "-url must end in /agent",
		"nothing arrived",
	} {
		if !strings.Contains(table, msg) {
			t.Errorf("README troubleshooting no longer quotes %q: update this list", msg)
		}
		if !strings.Contains(source.String(), msg) {
			t.Errorf("README troubleshooting quotes %q, which no program prints", msg)
		}
	}
}
