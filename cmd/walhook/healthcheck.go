package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealthcheck probes a walhook process's health endpoint and fails unless it answers 2xx. It
// is the container image's HEALTHCHECK: a distroless image has no curl or wget.
func runHealthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	var url string
	var timeout time.Duration
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.StringVar(&url, "url", "http://127.0.0.1:8080/healthz", "URL to probe; /readyz checks readiness instead of liveness")
	durationVar(fs, &timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlagsOnly(fs, args, "Usage: walhook healthcheck [--url URL]\n\nExits 0 when URL answers 2xx, 1 otherwise."); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s: %s", url, resp.Status, body)
	}
	_, err = fmt.Fprintf(stdout, "%s: %s", resp.Status, body)
	return err
}
