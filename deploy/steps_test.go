package deploy_test

import (
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard"
)

// composeAMQP is where compose publishes RabbitMQ on the host: not 5672,
// so it starts beside a local broker (docs/testing.md names it).
const composeAMQP = "127.0.0.1:5673"

// withImageEnv returns env on top of the image's own ENV (the Dockerfile's
// final stage), as a container sees it: SWITCHBOARD_ADDR=:8080 makes the
// node reachable, so its secret rules apply.
func withImageEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ins := parseDockerfile(file(t, "Dockerfile"))
	last := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	for _, in := range ins[last:] {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				out[k] = v
			}
		}
	}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// fromUser are the settings compose must take from the user's shell or
// deploy/.env without a default of its own: the secrets (a default would be
// a secret everyone knows, which the node refuses on :8080) and every
// Twilio setting (without them every webhook is refused).
func fromUser() []string {
	names := []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_PUBLIC_URL"}
	for _, s := range switchboard.Settings() {
		for _, e := range s.Env {
			if strings.HasPrefix(e, "TWILIO_") {
				names = append(names, e)
			}
		}
	}
	return names
}

func checkComposeFromUser(t *testing.T, service string, env map[string]string) {
	t.Helper()
	for _, name := range fromUser() {
		if v, ok := env[name]; !ok || v != "${"+name+":-}" {
			t.Errorf("compose.yaml %s: %s must be passed from the user's environment as ${%s:-}, is %q", service, name, name, v)
		}
	}
	// What the deployment steps put in deploy/.env makes a node that starts.
	user := map[string]string{}
	for k, v := range env {
		user[k] = interpolate(v)
	}
	for k, v := range dotEnv(t) {
		user[k] = v
	}
	checkEnvValid(t, "compose.yaml "+service+" with the steps' deploy/.env", withImageEnv(t, user))
}

// checkComposePorts: every published port is on 127.0.0.1, and none is a
// port a local RabbitMQ or a local node (the quick start) already uses.
func checkComposePorts(t *testing.T, c compose) {
	t.Helper()
	_, nodePort, _ := net.SplitHostPort(switchboard.NewOptions().Addr)
	taken := map[string]string{"5672": "a local RabbitMQ", "15672": "a local RabbitMQ's management UI", nodePort: "a local node (the quick start)"}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("compose.yaml %s publishes %q: publish on 127.0.0.1:HOST:CONTAINER only", name, p)
				continue
			}
			if who, ok := taken[parts[1]]; ok {
				t.Errorf("compose.yaml %s publishes host port %s, which %s uses: pick another", name, parts[1], who)
			}
		}
	}
}

// --- the steps of docs/deployment.md ----------------------------------------

// deploySteps returns the shell blocks of docs/deployment.md under the
// heading that starts with section.
func deploySteps(t *testing.T, section string) string {
	t.Helper()
	doc := file(t, "../docs/deployment.md")
	_, rest, ok := strings.Cut(doc, "\n## "+section)
	if !ok {
		t.Fatalf("docs/deployment.md: no section %q", section)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(rest, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("docs/deployment.md %s: no ```sh steps", section)
	}
	return strings.Join(blocks, "\n")
}

// dotEnv is the deploy/.env the compose steps write (a heredoc).
func dotEnv(t *testing.T) map[string]string {
	t.Helper()
	m := regexp.MustCompile(`(?s)cat > deploy/\.env <<EOF\n(.*?)\nEOF`).FindStringSubmatch(deploySteps(t, "Container"))
	if m == nil {
		t.Fatal("docs/deployment.md Container: no `cat > deploy/.env <<EOF` step")
	}
	env := map[string]string{}
	for _, line := range strings.Split(m[1], "\n") {
		line, _, _ = strings.Cut(line, " #")
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			env[k] = shellValue(v)
		}
	}
	return env
}

// shellValue stands in for what the steps' shell expansions produce.
func shellValue(v string) string {
	if !strings.Contains(v, " ") {
		v = strings.Trim(v, `"`)
	}
	for from, to := range map[string]string{
		"$(openssl rand -hex 32)": strings.Repeat("5e", 32),
		"$(openssl rand -hex 24)": strings.Repeat("a7", 24),
		"$APP_URL":                "https://switchboard-1a2b3c4d5e6f.herokuapp.com",
		"$AMQP_PASSWORD":          strings.Repeat("a7", 24),
	} {
		v = strings.ReplaceAll(v, from, to)
	}
	return v
}

var settingName = regexp.MustCompile(`\b(?:SWITCHBOARD|TWILIO|CLOUDAMQP)_[A-Z0-9_]*[A-Z0-9]\b|\bPORT\b`)

// notNodeSettings are names the deployment steps use that are not the
// node's settings, and why.
var notNodeSettings = map[string]string{
	"SWITCHBOARD_TEST_AMQP_URL": "the tests' broker (docs/testing.md), used with compose's",
}

// TestDeployStepsNameRealSettings: every variable the deployment steps
// name (in their commands and their text) is one the node reads.
func TestDeployStepsNameRealSettings(t *testing.T) {
	known := settingsByEnv()
	doc := file(t, "../docs/deployment.md")
	var names []string
	for _, n := range settingName.FindAllString(doc, -1) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if _, ok := known[n]; !ok && notNodeSettings[n] == "" {
			t.Errorf("docs/deployment.md names %s, which the node does not read (not in switchboard.Settings())", n)
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %v in docs/deployment.md", names)
	}
}

// TestHerokuSteps: the steps use the app's real URL (apps created since
// 2023 get NAME-<id>.herokuapp.com), install the agent they use, say
// whether the plan has streams, and their config:set makes a node that
// starts on Heroku's PORT.
func TestHerokuSteps(t *testing.T) {
	steps := deploySteps(t, "Heroku")
	for _, want := range []string{
		"heroku apps:info --json",
		"SWITCHBOARD_PUBLIC_URL=\"$APP_URL\"",
		"go install github.com/switchboard/switchboard/cmd/agent@latest",
		"-token \"$(heroku run",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("docs/deployment.md Heroku steps lack %q:\n%s", want, steps)
		}
	}
	if strings.Contains(steps, "my-switchboard.herokuapp.com") {
		t.Error("docs/deployment.md Heroku steps guess the app URL from its name")
	}
	if !strings.Contains(file(t, "../docs/deployment.md"), "streams") {
		t.Error("docs/deployment.md: the Heroku section must say the CloudAMQP plan needs streams, and how to check")
	}
	set := regexp.MustCompile(`(?s)heroku config:set (.*?)\n[^ ]`).FindStringSubmatch(steps)
	if set == nil {
		t.Fatal("docs/deployment.md Heroku: no heroku config:set")
	}
	env := map[string]string{"PORT": "31337", "CLOUDAMQP_URL": "amqps://u:p@rabbit.example.com/vhost"}
	for _, kv := range strings.Fields(shellValue(strings.ReplaceAll(set[1], "\\\n", " "))) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = strings.Trim(v, `"`)
		}
	}
	for _, need := range []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_PUBLIC_URL", "TWILIO_AUTH_TOKEN"} {
		if env[need] == "" {
			t.Errorf("heroku config:set does not set %s", need)
		}
	}
	o := checkEnvValid(t, "docs/deployment.md heroku config:set", env)
	if o.PublicURL != "https://switchboard-1a2b3c4d5e6f.herokuapp.com" {
		t.Errorf("public URL %q: strip the trailing / of web_url", o.PublicURL)
	}
}

// TestComposeSteps: a .env with a real secret and every Twilio setting, a
// token step, and the broker's host port in the tests' command.
func TestComposeSteps(t *testing.T) {
	steps := deploySteps(t, "Container")
	env := dotEnv(t)
	for _, name := range fromUser() {
		if _, ok := env[name]; !ok {
			t.Errorf("the deploy/.env step does not set %s", name)
		}
	}
	for _, want := range []string{
		"docker compose -f deploy/compose.yaml exec switchboard-1 switchboard token alice",
		"SWITCHBOARD_TEST_AMQP_URL=amqp://guest:guest@" + composeAMQP + "/",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("docs/deployment.md Container steps lack %q:\n%s", want, steps)
		}
	}
}

// TestVPSSteps: RabbitMQ is installed and the user, vhost and permissions
// the env file's SWITCHBOARD_AMQP_URL names are created; the secrets are
// generated; the nginx site becomes the default server.
func TestVPSSteps(t *testing.T) {
	steps := deploySteps(t, "VPS")
	env := envFile(t, "systemd/switchboard.env")
	u := regexp.MustCompile(`^amqp://([^:]+):([^@]+)@([^/]+)/(.+)$`).FindStringSubmatch(env["SWITCHBOARD_AMQP_URL"])
	if u == nil {
		t.Fatalf("switchboard.env: SWITCHBOARD_AMQP_URL %q is not amqp://USER:PASSWORD@HOST/VHOST", env["SWITCHBOARD_AMQP_URL"])
	}
	user, vhost := u[1], u[4]
	for _, name := range []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_ADMIN_TOKEN"} {
		if env[name] != "" {
			t.Errorf("switchboard.env ships %s=%q: ship it empty (agents refused) and let the steps generate it; a shipped value is one everyone knows", name, env[name])
		}
	}
	for _, want := range []string{
		"apt-get install -y rabbitmq-server nginx",
		"rabbitmqctl add_vhost " + vhost,
		"rabbitmqctl add_user " + user + " ",
		"rabbitmqctl set_permissions -p " + vhost + " " + user + ` '.*' '.*' '.*'`,
		"rm -f /etc/nginx/sites-enabled/default",
		"nginx -t",
	} {
		if !strings.Contains(steps, want) {
			t.Errorf("docs/deployment.md VPS steps lack %q:\n%s", want, steps)
		}
	}
	// The sed step fills the env file's secrets and broker URL; the result
	// is a node that starts.
	filled := map[string]string{}
	for k, v := range env {
		filled[k] = v
	}
	for _, m := range regexp.MustCompile(`-e "s\|\^([A-Z_]+)=\.\*\|([A-Z_]+)=([^|]*)\|"`).FindAllStringSubmatch(steps, -1) {
		if m[1] != m[2] {
			t.Errorf("sed step replaces %s with %s", m[1], m[2])
		}
		if _, ok := env[m[1]]; !ok {
			t.Errorf("sed step sets %s, which switchboard.env does not have", m[1])
		}
		filled[m[1]] = shellValue(m[3])
	}
	for _, name := range []string{"SWITCHBOARD_SECRET", "SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_AMQP_URL"} {
		if filled[name] == env[name] {
			t.Errorf("the VPS steps leave %s as shipped (%q)", name, env[name])
		}
	}
	if !strings.Contains(filled["SWITCHBOARD_AMQP_URL"], "@127.0.0.1:5672/"+vhost) {
		t.Errorf("the filled broker URL %q is not the vhost the steps create", filled["SWITCHBOARD_AMQP_URL"])
	}
	o := checkEnvValid(t, "switchboard.env after the VPS steps", filled, "-addr", ":8081") // even reachable
	if o.Secret == "" {
		t.Error("the VPS steps leave agents locked out (no secret)")
	}
	if !regexp.MustCompile(`(?m)^\s*listen 80 default_server;`).MatchString(file(t, "nginx/switchboard.conf")) {
		t.Error("nginx/switchboard.conf: listen 80 default_server, so a distribution's default site cannot take Twilio's requests")
	}
}
