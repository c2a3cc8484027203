package deploy_test

import (
	"fmt"
	sbt "github.com/switchboard/switchboard/switchboard/switchboardtest"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/switchboard"
)

const wait = 10 * time.Second

var binDir string // holds the switchboard binary, built on first use

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-deploy")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// file reads a file of the repository, relative to deploy/.
func file(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// settingsByEnv maps every environment variable the node reads to its
// setting (switchboard.Settings is the single source of truth).
func settingsByEnv() map[string]switchboard.Setting {
	m := map[string]switchboard.Setting{}
	for _, s := range switchboard.Settings() {
		for _, e := range s.Env {
			m[e] = s
		}
	}
	return m
}

// checkEnvNames fails for every name the node does not read.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := settingsByEnv()
	for _, n := range names {
		if _, ok := known[n]; !ok {
			t.Errorf("%s sets %s, which the node does not read (not in switchboard.Settings())", where, n)
		}
	}
}

// checkEnvValid loads env into the node's options the way the binary does,
// applies flags, and validates: the deploy file's values must make a node
// that starts.
func checkEnvValid(t *testing.T, where string, env map[string]string, flags ...string) switchboard.Options {
	t.Helper()
	o := switchboard.NewOptions()
	if err := switchboard.LoadEnv(&o, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("%s: environment: %v", where, err)
	}
	if len(flags) > 0 {
		fs := newFlagSet(&o)
		if err := fs.Parse(flags); err != nil {
			t.Fatalf("%s: flags %q: %v", where, flags, err)
		}
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("%s: the node would refuse these settings: %v", where, err)
	}
	return o
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binary builds cmd/switchboard once per test run and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	path := filepath.Join(binDir, "switchboard")
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", path, "../cmd/switchboard").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build switchboard: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return path
}

// syncBuffer collects a child process's output.
type syncBuffer = sbt.SyncBuffer

// nginxBinary returns the nginx executable, or skips the test with a clear
// message; SWITCHBOARD_REQUIRE_NGINX=1 (CI) makes a missing nginx a failure.
func nginxBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "nginx is not installed (apt-get install nginx); the shipped nginx config is not checked. CI sets SWITCHBOARD_REQUIRE_NGINX=1"
	if os.Getenv("SWITCHBOARD_REQUIRE_NGINX") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var (
	listenLine   = regexp.MustCompile(`(?m)^(\s*)listen\s+80(\s+default_server)?;`)
	upstreamLine = regexp.MustCompile(`(?m)^(\s*)server\s+(\S+)((?:\s+[a-z_]+=\S+)*)\s*;`)
)

// upstreamServers returns the server lines of an upstream file: address and
// parameters.
func upstreamServers(conf string) (addrs, params []string) {
	for _, m := range upstreamLine.FindAllStringSubmatch(conf, -1) {
		addrs = append(addrs, m[2])
		params = append(params, strings.TrimSpace(m[3]))
	}
	return addrs, params
}

// nginxConfig writes a runnable configuration into dir: the shipped
// nginx/switchboard.conf with its plain-HTTP listen moved to
// 127.0.0.1:listenPort, and the shipped upstream file with its servers
// replaced, in order, by nodes (everything else kept). It returns the path
// of the main file. The shipped files are not touched.
//
// Each of sites (a distribution's own sites, say) is included before the
// shipped one, with LISTEN standing for the same loopback address.
func nginxConfig(t testing.TB, dir, upstreamFile string, listenPort int, nodes []string, sites ...string) string {
	t.Helper()
	site := file(t, "nginx/switchboard.conf")
	if n := len(listenLine.FindAllString(site, -1)); n != 1 {
		t.Fatalf("nginx/switchboard.conf: want one `listen 80 default_server;` line to move to loopback, found %d", n)
	}
	site = listenLine.ReplaceAllString(site, fmt.Sprintf("${1}listen 127.0.0.1:%d${2};", listenPort))

	up := file(t, upstreamFile)
	addrs, _ := upstreamServers(up)
	if len(addrs) != len(nodes) {
		t.Fatalf("%s has %d servers; the test supplies %d", upstreamFile, len(addrs), len(nodes))
	}
	i := 0
	up = upstreamLine.ReplaceAllStringFunc(up, func(line string) string {
		m := upstreamLine.FindStringSubmatch(line)
		out := fmt.Sprintf("%sserver %s%s;", m[1], nodes[i], m[3])
		i++
		return out
	})

	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "switchboard.conf"), []byte(site), 0o644))
	must(os.WriteFile(filepath.Join(dir, "upstream.conf"), []byte(up), 0o644))
	var others strings.Builder
	for i, site := range sites {
		name := filepath.Join(dir, fmt.Sprintf("site%d.conf", i))
		must(os.WriteFile(name, []byte(strings.ReplaceAll(site, "LISTEN", fmt.Sprintf("127.0.0.1:%d", listenPort))), 0o644))
		fmt.Fprintf(&others, "    include %s;\n", name)
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise drop to nobody, who cannot enter the
		// test's private temp directory.
		user = "user root root;\n"
	}
	main := fmt.Sprintf(`%sworker_processes 1;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
%[3]s    include %[2]s/switchboard.conf;
    include %[2]s/upstream.conf;
}
`, user, dir, others.String())
	must(os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	path := filepath.Join(dir, "nginx.conf")
	must(os.WriteFile(path, []byte(main), 0o644))
	return path
}

// nginxArgs are the arguments that keep nginx in dir: prefix, config,
// error log on stderr, pid file, and the given extra -g directives.
func nginxArgs(dir, conf, globals string) []string {
	return []string{"-p", dir, "-c", conf, "-e", "stderr",
		"-g", fmt.Sprintf("pid %s/nginx.pid; error_log stderr notice; %s", dir, globals)}
}

// startNginx runs nginx in the foreground on 127.0.0.1:port with the
// shipped config pointed at nodes, and stops it when the test ends.
func startNginx(t testing.TB, port int, nodes []string, sites ...string) (base string, logs *syncBuffer) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	conf := nginxConfig(t, dir, "nginx/upstream.conf", port, nodes, sites...)
	cmd := exec.Command(bin, nginxArgs(dir, conf, "daemon off;")...)
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("nginx output:\n%s", logs.String())
		}
	})
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	sbt.WaitFor(t, wait, "nginx accepting connections", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("nginx exited: %v\n%s", err, logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return base, logs
}
