package deploy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard/switchboard/switchboard"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
)

func newFlagSet(o *switchboard.Options) *flag.FlagSet {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switchboard.BindFlags(fs, o)
	return fs
}

// --- Heroku -----------------------------------------------------------------

func TestHerokuProcfileAndBuildpack(t *testing.T) {
	// deploy/Procfile documents the process the Go buildpack declares.
	procs := map[string]string{}
	for _, line := range strings.Split(file(t, "Procfile"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, cmd, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("Procfile: %q is not `type: command`", line)
		}
		procs[strings.TrimSpace(typ)] = strings.TrimSpace(cmd)
	}
	if len(procs) != 1 || procs["web"] != "bin/switchboard" {
		t.Fatalf("Procfile declares %v, want only web: bin/switchboard", procs)
	}

	// With exactly one package to install, the buildpack names the web
	// process after its binary: bin/switchboard.
	gomod := file(t, "../go.mod")
	install := regexp.MustCompile(`(?m)^// \+heroku install (.+)$`).FindAllStringSubmatch(gomod, -1)
	if len(install) != 1 || strings.Fields(install[0][1])[0] != "./cmd/switchboard" || len(strings.Fields(install[0][1])) != 1 {
		t.Fatalf("go.mod needs exactly `// +heroku install ./cmd/switchboard`, has %q", install)
	}
	if _, err := os.Stat("../cmd/switchboard/main.go"); err != nil {
		t.Fatalf("the package Heroku installs is missing: %v", err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	hv := regexp.MustCompile(`(?m)^// \+heroku goVersion go(\d+\.\d+)\s*$`).FindStringSubmatch(gomod)
	if goLine == nil || hv == nil || goLine[1] != hv[1] {
		t.Fatalf("go.mod: `// +heroku goVersion go%s` must match the go directive (got %q)", goLine[1], hv)
	}
}

func TestHerokuPORT(t *testing.T) {
	// Heroku sets a bare port number in PORT; it wins over SWITCHBOARD_ADDR.
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PORT": "31337"}, ":31337"},
		{map[string]string{"PORT": "31337", "SWITCHBOARD_ADDR": "127.0.0.1:9"}, ":31337"},
		{map[string]string{"SWITCHBOARD_ADDR": "127.0.0.1:9"}, "127.0.0.1:9"},
	} {
		if o := checkEnvValid(t, "PORT", tc.env); o.Addr != tc.want {
			t.Errorf("env %v: addr %q, want %q", tc.env, o.Addr, tc.want)
		}
	}
}

type appJSON struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description"`
	Keywords    []string               `json:"keywords"`
	Repository  string                 `json:"repository"`
	SuccessURL  string                 `json:"success_url"`
	Buildpacks  []struct{ URL string } `json:"buildpacks"`
	Formation   map[string]struct {
		Quantity int    `json:"quantity"`
		Size     string `json:"size"`
	} `json:"formation"`
	Addons []struct {
		Plan string `json:"plan"`
		As   string `json:"as"`
	} `json:"addons"`
	Env map[string]struct {
		Description string `json:"description"`
		Value       string `json:"value"`
		Required    *bool  `json:"required"`
		Generator   string `json:"generator"`
	} `json:"env"`
}

// notInAppJSON are the settings app.json leaves out on purpose, and why.
// Every other setting must be in app.json with a description.
var notInAppJSON = map[string]string{
	"PORT":                    "set by Heroku for the web dyno",
	"SWITCHBOARD_ADDR":        "PORT wins on Heroku",
	"CLOUDAMQP_URL":           "set by the CloudAMQP add-on",
	"TWILIO_API_URL":          "tests and load runs only",
	"SWITCHBOARD_STATS_GROUP": "dynos cannot reach an operator's LAN: metrics are off (SWITCHBOARD_STATS_INTERVAL=0)",
	"SWITCHBOARD_STATS_IFACE": "as SWITCHBOARD_STATS_GROUP",
	"SWITCHBOARD_SSH_ADDR":    "Heroku's router carries only HTTP: a dyno cannot serve SSH",
	"SWITCHBOARD_SSH_KEYS":    "as SWITCHBOARD_SSH_ADDR",
}

func TestHerokuAppJSON(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(file(t, "app.json")))
	dec.DisallowUnknownFields()
	var app appJSON
	if err := dec.Decode(&app); err != nil {
		t.Fatalf("app.json: %v", err)
	}
	if app.Name == "" || app.Description == "" {
		t.Error("app.json: name and description are required")
	}
	if len(app.Buildpacks) != 1 || app.Buildpacks[0].URL != "heroku/go" {
		t.Errorf("app.json buildpacks = %+v, want heroku/go", app.Buildpacks)
	}
	if _, ok := app.Formation["web"]; !ok {
		t.Error("app.json: no web formation")
	}
	// The RabbitMQ add-on provides CLOUDAMQP_URL, which the node reads.
	if !slices.ContainsFunc(app.Addons, func(a struct {
		Plan string `json:"plan"`
		As   string `json:"as"`
	}) bool {
		return strings.HasPrefix(a.Plan, "cloudamqp:") && (a.As == "" || a.As == "CLOUDAMQP")
	}) {
		t.Errorf("app.json addons = %+v, want a cloudamqp plan attached as CLOUDAMQP", app.Addons)
	}
	if s, ok := settingsByEnv()["CLOUDAMQP_URL"]; !ok || s.Flag != "amqp" {
		t.Error("the node no longer reads CLOUDAMQP_URL for -amqp: the add-on would be ignored")
	}

	var names []string
	env := map[string]string{"PORT": "31337", "CLOUDAMQP_URL": "amqps://u:p@rabbit.example.com/vhost"}
	for name, v := range app.Env {
		names = append(names, name)
		if strings.TrimSpace(v.Description) == "" {
			t.Errorf("app.json env %s has no description", name)
		}
		if why, ok := notInAppJSON[name]; ok {
			t.Errorf("app.json sets %s, which is left out on purpose: %s", name, why)
		}
		if v.Generator != "" && v.Generator != "secret" {
			t.Errorf("app.json env %s: unknown generator %q", name, v.Generator)
		}
		switch {
		case v.Generator == "secret":
			env[name] = "generated-secret"
		case v.Value != "":
			env[name] = v.Value
		}
	}
	sort.Strings(names)
	checkEnvNames(t, "app.json", names)
	for name, s := range settingsByEnv() {
		if _, ok := app.Env[name]; !ok && notInAppJSON[name] == "" {
			t.Errorf("setting %s (-%s) is not in deploy/app.json: add it with a description, or add it to notInAppJSON with the reason", name, s.Flag)
		}
	}
	for _, name := range []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_ADMIN_TOKEN"} {
		if app.Env[name].Generator != "secret" {
			t.Errorf("app.json: %s should be generated (\"generator\": \"secret\")", name)
		}
	}

	o := checkEnvValid(t, "app.json", env)
	if o.Addr != ":31337" || o.AMQPURL != env["CLOUDAMQP_URL"] {
		t.Errorf("on Heroku the node would listen on %q with broker %q", o.Addr, o.AMQPURL)
	}
	if o.StatsInterval != 0 {
		t.Errorf("metrics multicast should be off on Heroku, interval is %v", o.StatsInterval)
	}
	// Heroku kills a dyno 30s after SIGTERM: drain in less.
	if o.ShutdownTimeout >= 30*time.Second {
		t.Errorf("shutdown timeout %v: Heroku kills at 30s", o.ShutdownTimeout)
	}
}

// --- Container ----------------------------------------------------------------

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions, joining
// continuation lines and dropping comments.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(file(t, "Dockerfile"))
	var froms []int
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM", len(froms))
	}
	build, final := ins[froms[0]:froms[len(froms)-1]], ins[froms[len(froms)-1]:]
	if !strings.Contains(strings.ToLower(ins[froms[0]].args), " as build") {
		t.Errorf("first stage should be named build: %q", ins[froms[0]].args)
	}

	has := func(stage []instruction, cmd string, pred func(string) bool) bool {
		return slices.ContainsFunc(stage, func(in instruction) bool { return in.cmd == cmd && pred(in.args) })
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"static binary: CGO_ENABLED=0 in the build stage", has(build, "ENV", func(a string) bool { return strings.Contains(a, "CGO_ENABLED=0") })},
		{"builds ./cmd/switchboard", has(build, "RUN", func(a string) bool {
			return strings.Contains(a, "go build") && strings.Contains(a, "./cmd/switchboard")
		})},
		{"copies the binary from the build stage", has(final, "COPY", func(a string) bool { return strings.Contains(a, "--from=build") && strings.Contains(a, "switchboard") })},
		{"HEALTHCHECK on /healthz", has(final, "HEALTHCHECK", func(a string) bool { return strings.Contains(a, "/healthz") })},
		{"ENTRYPOINT is the switchboard binary", has(final, "ENTRYPOINT", func(a string) bool { return strings.Contains(a, "/usr/local/bin/switchboard") })},
		{"a data volume", has(final, "VOLUME", func(a string) bool { return strings.Contains(a, "/data") })},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("Dockerfile: no %s", c.what)
		}
	}
	// Non-root: the last USER of the final stage is a non-zero uid.
	user := ""
	for _, in := range final {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
		t.Errorf("Dockerfile: the final stage runs as %q, want a non-root USER", user)
	}
	// Every ENV of the final stage is a setting the node reads, and the
	// HEALTHCHECK port follows SWITCHBOARD_ADDR.
	env := map[string]string{}
	var names []string
	for _, in := range final {
		if in.cmd != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.args) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
			names = append(names, k)
		}
	}
	checkEnvNames(t, "Dockerfile ENV", names)
	o := checkEnvValid(t, "Dockerfile ENV", env)
	if o.DataDir != "/data" || !strings.HasSuffix(o.Addr, ":8080") {
		t.Errorf("image defaults: data %q addr %q", o.DataDir, o.Addr)
	}
	if !has(final, "EXPOSE", func(a string) bool { return a == "8080" }) {
		t.Error("Dockerfile: EXPOSE 8080 (the port of SWITCHBOARD_ADDR)")
	}
	// The Go version of the build image follows go.mod.
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(file(t, "../go.mod"))
	if !has(ins, "ARG", func(a string) bool { return a == "GO_VERSION="+goLine[1] }) {
		t.Errorf("Dockerfile: ARG GO_VERSION=%s (go.mod's go directive)", goLine[1])
	}
	// The ignore file beside the Dockerfile must not drop what the build needs.
	for _, line := range strings.Split(file(t, "Dockerfile.dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "switchboard", "udpstats"} {
			if line == needed || line == needed+"/" || line == "*" || line == "**" {
				t.Errorf("Dockerfile.dockerignore excludes %q, which the build needs", line)
			}
		}
	}
}

// compose is the part of the Compose specification deploy/compose.yaml
// uses. Decoding is strict: a key not listed here (a typo, or a feature the
// test does not check yet) fails the test.
type compose struct {
	Name       string                    `yaml:"name"`
	Services   map[string]composeService `yaml:"services"`
	Volumes    map[string]any            `yaml:"volumes"`
	Extensions map[string]any            `yaml:",inline"` // x-* anchors
}

type composeService struct {
	Image           string                                `yaml:"image"`
	Build           *struct{ Context, Dockerfile string } `yaml:"build"`
	Hostname        string                                `yaml:"hostname"`
	Restart         string                                `yaml:"restart"`
	StopGracePeriod string                                `yaml:"stop_grace_period"`
	DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
	Environment     map[string]string                     `yaml:"environment"`
	Ports           []string                              `yaml:"ports"`
	Volumes         []string                              `yaml:"volumes"`
	Healthcheck     *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

// interpolate resolves Compose's ${VAR:-default} and ${VAR} with an empty
// environment, as `docker compose up` does with nothing set.
func interpolate(v string) string {
	return regexp.MustCompile(`\$\{[A-Z0-9_]+(?::?-([^}]*))?\}`).ReplaceAllString(v, "$1")
}

func TestCompose(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(file(t, "compose.yaml")))
	dec.KnownFields(true)
	var c compose
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("compose.yaml: unknown top-level key %q", k)
		}
	}

	// The broker the tests use: `docker compose -f deploy/compose.yaml up -d rabbitmq`.
	rmq, ok := c.Services["rabbitmq"]
	if !ok || rmq.Image != "rabbitmq:3-management" {
		t.Fatalf("compose.yaml: want service rabbitmq with image rabbitmq:3-management, got %+v", rmq)
	}
	if !slices.Contains(rmq.Ports, composeAMQP+":5672") {
		t.Errorf("rabbitmq must publish %s (docs/testing.md points the tests at it), has %v", composeAMQP, rmq.Ports)
	}
	checkComposePorts(t, c) // steps_test.go
	if rmq.Healthcheck == nil {
		t.Error("rabbitmq needs a healthcheck for the nodes' depends_on")
	}

	var nodes []string
	nodeIDs, dataVols := map[string]bool{}, map[string]bool{}
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		nodes = append(nodes, name)
		if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: build file: %v", name, err)
		}
		var names []string
		env := map[string]string{}
		for k, v := range s.Environment {
			names = append(names, k)
			env[k] = interpolate(v)
		}
		sort.Strings(names)
		checkEnvNames(t, "compose.yaml "+name, names)
		for _, need := range []string{"SWITCHBOARD_AMQP_URL", "SWITCHBOARD_NODE", "SWITCHBOARD_DATA"} {
			if env[need] == "" {
				t.Errorf("compose.yaml %s: %s must be set", name, need)
			}
		}
		checkComposeFromUser(t, name, s.Environment) // steps_test.go
		o := checkEnvValid(t, "compose.yaml "+name, withImageEnv(t, env))
		if !strings.Contains(o.AMQPURL, "@rabbitmq:5672") {
			t.Errorf("%s: broker %q is not the rabbitmq service", name, o.AMQPURL)
		}
		if s.DependsOn["rabbitmq"].Condition != "service_healthy" {
			t.Errorf("%s must wait for a healthy rabbitmq", name)
		}
		nodeIDs[o.Node] = true
		for _, v := range s.Volumes {
			if strings.HasSuffix(v, ":"+o.DataDir) {
				dataVols[v] = true
			}
		}
	}
	sort.Strings(nodes)
	if len(nodes) != 2 || len(nodeIDs) != 2 || len(dataVols) != 2 {
		t.Fatalf("want two switchboard nodes with distinct ids and data volumes: %v %v %v", nodes, nodeIDs, dataVols)
	}

	// nginx in front, with the shipped site config and the compose upstream
	// naming exactly the two node services.
	ngx, ok := c.Services["nginx"]
	if !ok {
		t.Fatal("compose.yaml: no nginx service")
	}
	mounted := map[string]bool{}
	for _, v := range ngx.Volumes {
		src := strings.Split(v, ":")[0]
		if _, err := os.Stat(src); err != nil {
			t.Errorf("nginx mounts %s: %v", src, err)
		}
		mounted[filepath.Clean(src)] = true
	}
	for _, f := range []string{"nginx/switchboard.conf", "nginx/upstream.compose.conf"} {
		if !mounted[f] {
			t.Errorf("nginx does not mount %s", f)
		}
	}
	addrs, _ := upstreamServers(file(t, "nginx/upstream.compose.conf"))
	var hosts []string
	for _, a := range addrs {
		h, port, _ := strings.Cut(a, ":")
		hosts = append(hosts, h)
		if port != "8080" {
			t.Errorf("upstream.compose.conf: %s: the image listens on 8080", a)
		}
	}
	sort.Strings(hosts)
	if !slices.Equal(hosts, nodes) {
		t.Errorf("upstream.compose.conf names %v, compose.yaml runs nodes %v", hosts, nodes)
	}
	for _, n := range nodes {
		if ngx.DependsOn[n].Condition != "service_healthy" {
			t.Errorf("nginx must wait for %s to be healthy (it resolves upstream names at start)", n)
		}
	}
}

// --- VPS: systemd -----------------------------------------------------------

const unitFile = "systemd/switchboard@.service"

// unitDirectives returns each Key=Value of a unit file, in order.
func unitDirectives(src string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		m[k] = append(m[k], v)
	}
	return m
}

func TestSystemdUnit(t *testing.T) {
	d := unitDirectives(file(t, unitFile))
	one := func(k string) string {
		if len(d[k]) == 0 {
			return ""
		}
		return d[k][len(d[k])-1]
	}
	for _, c := range []struct{ key, want string }{
		{"EnvironmentFile", "/etc/switchboard/switchboard.env"},
		{"DynamicUser", "yes"},
		{"ProtectSystem", "strict"},
		{"NoNewPrivileges", "yes"},
		{"StateDirectory", "switchboard/%i"},
		{"CapabilityBoundingSet", ""},
	} {
		if got, ok := d[c.key]; !ok || one(c.key) != c.want {
			t.Errorf("%s=%q, want %q", c.key, got, c.want)
		}
	}
	// UDP multicast needs AF_INET; finding the interface by name needs
	// AF_NETLINK. PrivateNetwork would cut the node off entirely.
	fams := strings.Fields(one("RestrictAddressFamilies"))
	for _, f := range []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"} {
		if !slices.Contains(fams, f) {
			t.Errorf("RestrictAddressFamilies lacks %s: %v", f, fams)
		}
	}
	if one("PrivateNetwork") == "yes" || len(d["IPAddressDeny"]) > 0 {
		t.Error("the node needs the network: no PrivateNetwork or IPAddressDeny")
	}

	// ExecStart's flags are flags the node has, and with the environment
	// file they make a valid node (%i = 8081).
	exec := strings.Fields(one("ExecStart"))
	if len(exec) < 2 || exec[0] != "/usr/local/bin/switchboard" || exec[1] != "serve" {
		t.Fatalf("ExecStart = %q", one("ExecStart"))
	}
	spec := strings.NewReplacer("%i", "8081", "%S", "/var/lib", "%H", "vps")
	var flags []string
	for _, a := range exec[2:] {
		flags = append(flags, spec.Replace(a))
	}
	o := checkEnvValid(t, unitFile, envFile(t, "systemd/switchboard.env"), flags...)
	if o.Addr != "127.0.0.1:8081" || o.DataDir != "/var/lib/switchboard/8081" {
		t.Errorf("instance 8081 would listen on %q with data in %q", o.Addr, o.DataDir)
	}
	// The instances the unit documents are the nginx upstreams.
	addrs, _ := upstreamServers(file(t, "nginx/upstream.conf"))
	for _, a := range addrs {
		port := a[strings.LastIndexByte(a, ':')+1:]
		if !strings.Contains(file(t, unitFile), "switchboard@"+port) {
			t.Errorf("nginx/upstream.conf has %s; the unit's instructions do not start switchboard@%s", a, port)
		}
	}
}

// envFile parses a systemd EnvironmentFile (KEY=value lines, # comments).
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	var names []string
	for _, line := range strings.Split(file(t, path), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		env[k] = v
		names = append(names, k)
	}
	checkEnvNames(t, path, names)
	return env
}

func TestSystemdEnvFile(t *testing.T) {
	env := envFile(t, "systemd/switchboard.env")
	for _, need := range []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_PUBLIC_URL", "SWITCHBOARD_AMQP_URL", "SWITCHBOARD_STATS_IFACE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"} {
		if _, ok := env[need]; !ok {
			t.Errorf("switchboard.env does not mention %s", need)
		}
	}
	if env["SWITCHBOARD_STATS_IFACE"] == "lo" {
		t.Error("switchboard.env: metrics on lo never reach udpstats on another machine")
	}
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; the unit is only checked statically")
	}
	// verify needs ExecStart to exist: point it at a freshly built binary.
	dir := t.TempDir()
	unit := strings.ReplaceAll(file(t, unitFile), "/usr/local/bin/switchboard", binary(t))
	if err := os.WriteFile(filepath.Join(dir, "switchboard@.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "verify", filepath.Join(dir, "switchboard@8081.service"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	// verify exits 0 on unknown keys and bad values, only warning: any line
	// about our unit is a failure.
	var ours []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "switchboard@") {
			ours = append(ours, line)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out.String())
	}
}

// --- VPS: nginx ---------------------------------------------------------------

func TestNginxConfigSyntax(t *testing.T) {
	bin := nginxBinary(t)
	for _, up := range []string{"nginx/upstream.conf", "nginx/upstream.compose.conf"} {
		t.Run(filepath.Base(up), func(t *testing.T) {
			dir := t.TempDir()
			addrs, _ := upstreamServers(file(t, up))
			var loop []string
			for i := range addrs {
				loop = append(loop, "127.0.0.1:"+string(rune('1'+i)))
			}
			conf := nginxConfig(t, dir, up, sbt.FreePort(t), loop)
			out, err := exec.Command(bin, append([]string{"-t"}, nginxArgs(dir, conf, "")...)...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "test is successful") {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "[warn]") || strings.Contains(string(out), "[emerg]") {
				t.Fatalf("nginx -t warns:\n%s", out)
			}
		})
	}
}

func TestNginxPolicy(t *testing.T) {
	site := file(t, "nginx/switchboard.conf")
	vps, compose := file(t, "nginx/upstream.conf"), file(t, "nginx/upstream.compose.conf")
	agent := regexp.MustCompile(`(?s)location = /agent \{(.*?)\n    \}`).FindStringSubmatch(site)
	if agent == nil {
		t.Fatal("nginx/switchboard.conf: no `location = /agent` block")
	}
	for _, c := range []struct {
		what, text string
		re         string
	}{
		{"least_conn balancing", vps, `(?m)^\s*least_conn;`},
		{"upstream keepalive", vps, `(?m)^\s*keepalive \d+;`},
		{"WebSocket Upgrade header", agent[1], `proxy_set_header Upgrade \$http_upgrade;`},
		{"WebSocket Connection header", agent[1], `proxy_set_header Connection \$switchboard_connection;`},
		{"HTTP/1.1 to the nodes", agent[1], `proxy_http_version 1.1;`},
		{"long WebSocket read timeout", agent[1], `proxy_read_timeout (3600s|[1-9]\d*h);`},
		{"long WebSocket send timeout", agent[1], `proxy_send_timeout (3600s|[1-9]\d*h);`},
		{"X-Forwarded-Proto", site, `proxy_set_header X-Forwarded-Proto \$switchboard_forwarded_proto;`},
		{"Host as the client sent it", site, `proxy_set_header Host \$switchboard_host;`},
		{"body limit of the node (64 KiB)", site, `client_max_body_size 64k;`},
	} {
		if !regexp.MustCompile(c.re).MatchString(c.text) {
			t.Errorf("nginx config: no %s (%s)", c.what, c.re)
		}
	}
	// Every node line marks failures, and the two upstream files agree on
	// everything but the addresses.
	_, vp := upstreamServers(vps)
	_, cp := upstreamServers(compose)
	for _, p := range append(slices.Clone(vp), cp...) {
		if !strings.Contains(p, "max_fails=") || !strings.Contains(p, "fail_timeout=") {
			t.Errorf("upstream server without max_fails/fail_timeout: %q", p)
		}
	}
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" && l[0] != '#' && !upstreamLine.MatchString(l) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(vps) != strip(compose) || !slices.Equal(vp, cp) {
		t.Errorf("upstream.conf and upstream.compose.conf differ beyond addresses:\n%s\n---\n%s", vps, compose)
	}
}

// TestNginxNavBodyLimit: POST /nav takes batches up to the node's
// -nav-max-body (1 MiB by default), far above the 64 KiB of webhooks and
// frames. nginx's server-wide client_max_body_size 64k refused a shop's
// batch of ~1,000 events with 413 before any node saw it; /nav needs its
// own location with the node's limit.
func TestNginxNavBodyLimit(t *testing.T) {
	site := file(t, "nginx/switchboard.conf")
	nav := regexp.MustCompile(`(?s)location = /nav \{(.*?)\n    \}`).FindStringSubmatch(site)
	if nav == nil {
		t.Fatal("nginx/switchboard.conf: no `location = /nav` block; the server's 64k body limit refuses navigation batches the node accepts")
	}
	m := regexp.MustCompile(`client_max_body_size (\d+)([km]?);`).FindStringSubmatch(nav[1])
	if m == nil {
		t.Fatalf("location = /nav has no client_max_body_size:\n%s", nav[1])
	}
	size, _ := strconv.ParseInt(m[1], 10, 64)
	switch m[2] {
	case "k":
		size <<= 10
	case "m":
		size <<= 20
	}
	if want := switchboard.NewOptions().Nav.MaxBody; size != want {
		t.Errorf("location = /nav: client_max_body_size is %d bytes, the node's -nav-max-body default is %d", size, want)
	}
	for _, re := range []string{`proxy_pass http://switchboard;`, `proxy_http_version 1.1;`, `proxy_set_header Host \$switchboard_host;`,
		`proxy_set_header X-Forwarded-Proto \$switchboard_forwarded_proto;`, `proxy_set_header Connection \$switchboard_connection;`} {
		if !regexp.MustCompile(re).MatchString(nav[1]) {
			t.Errorf("location = /nav lacks %s", re)
		}
	}
}
