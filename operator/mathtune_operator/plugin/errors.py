"""What the plugin's commands exit with (docs/cli.md). A CliError is printed as one
line, never a traceback."""

SUCCEEDED = 0          # the run succeeded and kept its original ability (gate passed)
ERROR = 1              # the cluster, the CRD or the plugin could not do what was asked
USAGE = 2              # bad input: a missing file, not a MathFinetune, refused by the API server, unknown run
GATE_FAILED = 3        # the run succeeded but no epoch passed the original-ability gate
RUN_FAILED = 4         # the run failed
INTERRUPTED = 130      # Ctrl-C while watching or following (the shell's 128 + SIGINT)


class CliError(Exception):
    def __init__(self, message: str, code: int = ERROR):
        super().__init__(message)
        self.message = message
        self.code = code
