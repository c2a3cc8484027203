package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchboard/switchboard/switchboard"
)

// secretFlags hold credentials: -help shows whether they are set, never
// their values (they are often taken from the environment).
var secretFlags = map[string]bool{"secret": true, "admin-token": true}

// usage prints the commands, then every flag with its default, with
// credentials shown as "(set)" and passwords in URLs as "xxxxx".
func usage(fs *flag.FlagSet, w io.Writer, getenv func(string) string) {
	fmt.Fprint(w, `usage:
  switchboard [serve] [flags]                      run a node
  switchboard token NAME [-capacity N] [-ttl D]    print an agent token (signed with SWITCHBOARD_SECRET)
  switchboard products import FILE [-data DIR]     load a product catalog into a stopped node's data

Every flag has an environment variable; flags win. The flags of serve:
`)
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s%s\n", line, strings.ReplaceAll(use, "\n", "\n    \t"), shownDefault(f))
	})
	fmt.Fprintln(w, "\nSettings read from the environment only (values are never shown):")
	for _, st := range switchboard.Settings() {
		if st.Flag != "" {
			continue
		}
		set := ""
		for _, e := range st.Env {
			if getenv(e) != "" {
				set = " (set)"
			}
		}
		fmt.Fprintf(w, "  %s\n    \t%s%s\n", strings.Join(st.Env, ", "), st.Usage, set)
	}
}

// shownDefault is the " (default ...)" suffix of f, or "" when its default
// is the zero value, which says nothing.
func shownDefault(f *flag.Flag) string {
	v := f.DefValue
	switch {
	case v == "" || v == "0" || v == "false" || v == "0s" || v == "[]":
		return ""
	case secretFlags[f.Name]:
		return " (set)"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			v = u.Redacted()
		}
	}
	if name, _ := flag.UnquoteUsage(f); name == "string" {
		v = strconv.Quote(v)
	}
	return " (default " + v + ")"
}

// listen opens the node's address, saying plainly when the port is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("-addr %s: the port is taken (another node or program listens there): stop it, or give this node another -addr", addr)
	case err != nil:
		return nil, fmt.Errorf("-addr %s: %w", addr, err)
	}
	return ln, nil
}
