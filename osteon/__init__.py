"""The `osteon` console command: gathers each package's subcommands under one name."""
