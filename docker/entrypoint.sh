#!/bin/sh
# The image's entry point (under tini): the first word picks what the container runs.
#   dashboard [streamlit options]   the Streamlit dashboard (default), $STREAMLIT_SERVER_ADDRESS:$STREAMLIT_SERVER_PORT
#   serve [options]                 the HTTP API, $DEEPFAKE_API_HOST:$DEEPFAKE_API_PORT; key from $DEEPFAKE_API_KEY
#   scan SOURCE --out OUT [options] the batch scanner
#   analyze ... / models ...        the other commands of `deepfake-check`
#   anything else                   run as given (e.g. `python -c ...`, `bash`)
set -eu
cd /app
if [ "$#" -eq 0 ]; then
  set -- dashboard
fi
case "$1" in
  dashboard)
    shift
    exec streamlit run /app/app.py "$@"
    ;;
  serve|scan|analyze|models)
    exec deepfake-check "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
