# Whether this run is CI's: the CI variable set to anything but "", "0" or "false". Sourced by
# scripts/moto.sh, scripts/interop.sh and scripts/asyncapi.sh, whose missing tools fail a CI run
# and only warn elsewhere.
is_ci() {
  case "${CI:-}" in
    "" | 0 | false | FALSE | False) return 1 ;;
    *) return 0 ;;
  esac
}
