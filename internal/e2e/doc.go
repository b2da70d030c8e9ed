// Package e2e holds Strait's end-to-end tests: in-process kfake clusters,
// the daemon, and clients driving it over HTTP (and, for crash tests, the
// strait binary in a subprocess). It has no non-test code.
package e2e
