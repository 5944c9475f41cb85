# step: one line per long step with its elapsed time, the tool's own output
# in a log file (sourced by the build scripts; bash).
#
#   step <what> <command...>
#
# prints "<what> ..." when it starts, "<what>: still running (90s)" every 30 s
# while it runs, and "<what> done in 123s" at the end; everything the command
# writes goes to $STEP_LOG (default $MATHTUNE_CACHE/logs/build.log). When it
# fails, the log's last 40 lines are shown with the log's path, and the
# command's exit code is returned.
# shellcheck shell=bash
STEP_LOG="${STEP_LOG:-${MATHTUNE_CACHE:-$HOME/.cache/mathtune}/logs/build.log}"
STEP_PREFIX="${STEP_PREFIX:-[build]}"
mkdir -p "$(dirname "$STEP_LOG")"

step() {
  local what="$1"; shift
  local start=$SECONDS code=0 beat
  printf '%s %s ...\n' "$STEP_PREFIX" "$what" >&2
  printf '\n=== %s: %s (%s)\n' "$(date -u +%FT%TZ)" "$what" "$*" >>"$STEP_LOG"
  # The heartbeat dies with this shell too (its parent's pid is checked).
  ( while sleep 30; do
      kill -0 $$ 2>/dev/null || exit 0
      printf '%s %s: still running (%ss)\n' "$STEP_PREFIX" "$what" "$(( SECONDS - start ))" >&2
    done ) &
  beat=$!
  "$@" >>"$STEP_LOG" 2>&1 || code=$?
  kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  if [[ $code -ne 0 ]]; then
    printf '%s %s FAILED (exit %s) after %ss; the end of %s:\n' "$STEP_PREFIX" "$what" "$code" \
      "$(( SECONDS - start ))" "$STEP_LOG" >&2
    tail -n 40 "$STEP_LOG" >&2
    return "$code"
  fi
  printf '%s %s done in %ss\n' "$STEP_PREFIX" "$what" "$(( SECONDS - start ))" >&2
}
