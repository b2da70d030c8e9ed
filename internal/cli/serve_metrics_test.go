package cli

import (
	"os"
	"testing"
)

// TestMetricsPartitionLabels: the switch is on by default, and the file,
// the environment and the flag turn it off (or on again), in that order
// of precedence.
func TestMetricsPartitionLabels(t *testing.T) {
	const env = "STRAIT_METRICS_PARTITION_LABELS"
	tests := []struct {
		name string
		file string
		env  string
		args []string
		want bool
	}{
		{name: "default", want: true},
		{name: "file", file: "metrics_partition_labels: false\n", want: false},
		{name: "env over file", file: "metrics_partition_labels: false\n", env: "true", want: true},
		{name: "flag over env", env: "true", args: []string{"--metrics-partition-labels=false"}, want: false},
		{name: "flag", args: []string{"--metrics-partition-labels=false"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(env, "") // restored when the test ends
			os.Unsetenv(env)
			clearEnv(t, nil)
			if tc.env != "" {
				t.Setenv(env, tc.env)
			}
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			got, err := load(t, args)
			if err != nil {
				t.Fatal(err)
			}
			if got.MetricsPartitionLabels != tc.want {
				t.Fatalf("metrics_partition_labels = %v, want %v", got.MetricsPartitionLabels, tc.want)
			}
		})
	}
}
