"""One module per `netspec` subcommand; `common` holds what they share."""
