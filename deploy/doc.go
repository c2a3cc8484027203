// Package deploy holds no code: it is the home of Switchboard's deployment
// files (Heroku Procfile and app.json, the container's Dockerfile and
// compose.yaml, the VPS systemd unit and nginx load balancer) and of the
// tests that keep them working as shipped.
//
// The tests check every file against the node's real settings table
// (switchboard.Settings), so a renamed or removed setting breaks the build
// instead of a deployment; they run the shipped nginx config (nginx -t, and
// an end-to-end run of two real nodes on RabbitMQ behind a real nginx on
// loopback) and the systemd unit (systemd-analyze verify) where those tools
// exist. SWITCHBOARD_REQUIRE_NGINX=1 turns a missing nginx into a failure.
package deploy
