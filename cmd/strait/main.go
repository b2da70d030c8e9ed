// Command strait is open-source cluster linking for any Kafka cluster.
package main

import (
	"os"

	"github.com/strait-dev/strait/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
