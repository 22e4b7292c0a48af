// Package deploy holds walhook's deployment artifacts — the container image (Dockerfile),
// Kubernetes manifests, systemd units, PostgreSQL settings and grants, Prometheus alert rules and
// a Grafana dashboard — and the tests that keep them true to the binary: every subcommand, flag,
// environment variable, port, probe path and metric they name must exist, and the process must
// stop gracefully on SIGTERM. It has no Go code of its own.
package deploy
