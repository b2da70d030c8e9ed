// Package packaging holds no code. Its tests check the files that package
// and deploy Strait, which no compiler reads: the release configuration
// (.goreleaser.yaml, and that its targets build), the systemd unit, the
// Helm chart and the Grafana dashboard, so that they stay true as the code
// changes.
package packaging
