"""One module per `handtrack` subcommand, each with add_parser(subparsers) and run(args)."""
