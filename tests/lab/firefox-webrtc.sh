#!/usr/bin/env bash
# Launch headless Firefox ESR for WebRTC tests on loopback, driven over WebDriver BiDi.
#
#   firefox-webrtc.sh [URL] [extra firefox arguments...]      (URL default: about:blank)
#
# Environment (all optional):
#   DIEMCAU_FIREFOX   the Firefox binary (default: firefox-esr on PATH, then firefox), e.g.
#                     /opt/firefox-esr-140/usr/lib/firefox-esr/firefox-esr
#   LAB_SCRATCH       parent dir for the throw-away profile/HOME/TMPDIR (default /tmp/lab-scratch)
#   LAB_BIDI_PORT     WebDriver BiDi port (default 0 = Firefox picks a free one); "none" = no
#                     remote agent at all (then a self-signed https:// page cannot be loaded)
#   LAB_LOG           file that receives Firefox's stdout+stderr (default: $profile/firefox.log)
#   LAB_KEEP_PROFILE  1 = do not delete the profile dir on exit
#   LAB_EXTRA_PREFS   a file appended to the profile's user.js (user_pref(...) lines)
#   LAB_OMIT_PREFS    space-separated pref-name prefixes to drop from the default user.js
#                     (experiments), e.g. "media.peerconnection.ice.loopback"
#   LAB_BIDI_TIMEOUT  seconds to wait for the BiDi listener line (default 30)
#   LAB_FAKE_TONE     frequency (Hz) of the fake microphone's sine (default 1000); the fake
#                     camera cannot be chosen: a full-frame colour cycling through the hues
#
# Prints on stderr, first "firefox-webrtc: pid=<pid> profile=<dir>", then (unless
# LAB_BIDI_PORT=none) "firefox-webrtc: bidi=ws://127.0.0.1:<port>" once Firefox listens.
# Connect a WebSocket to "<that>/session" and send session.new (see README.md).
# Runs Firefox in its own process group until it exits or this script gets SIGTERM/SIGINT,
# then ends the whole group and removes the profile dir. Exits 1 if Firefox exits or no
# BiDi line appears within LAB_BIDI_TIMEOUT.
set -euo pipefail

url="${1:-about:blank}"
[ $# -gt 0 ] && shift

bin="${DIEMCAU_FIREFOX:-}"
if [ -z "$bin" ]; then
  bin="$(command -v firefox-esr || command -v firefox || true)"
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "firefox-webrtc: no Firefox binary (apt-get install firefox-esr, or set DIEMCAU_FIREFOX)" >&2; exit 1; }

scratch="${LAB_SCRATCH:-/tmp/lab-scratch}"
mkdir -p "$scratch"
profile="$(mktemp -d "$scratch/firefox.XXXXXX")"
mkdir -p "$profile/home" "$profile/tmp"
log="${LAB_LOG:-$profile/firefox.log}"

prefs=(
  # --- needed (each removed in turn: tests/lab/README.md, "Prefs") ---
  'media.navigator.streams.fake true'              # without: getUserMedia -> NotFoundError (no devices)
  'permissions.default.camera 1'                   # without: a page counts as "not capturing" unless it
  'permissions.default.microphone 1'               # called getUserMedia itself -> ICE gathers only the
                                                   # default route's address (no 127.0.0.1; none in a
                                                   # netns); also lets such pages autoplay
  'media.peerconnection.ice.loopback true'         # without: no 127.0.0.1/::1 candidates at all
  'media.cubeb.force_mock_context true'            # without: AudioContext stays "suspended" (no sound
                                                   # card) -> no WebAudio tone analysis; ESR 140 lacks it
  "media.navigator.audio.fake_frequency ${LAB_FAKE_TONE:-1000}"  # fake microphone's sine, Hz
  # --- redundant while the above are set, kept for pages/prefs changed in experiments ---
  'media.navigator.permission.disabled true'       # no getUserMedia prompt even without permissions.default
  'media.peerconnection.ice.obfuscate_host_addresses false'  # never <uuid>.local (only used when not granted)
  'media.autoplay.default 0'                       # 0 = allow audible autoplay without a gesture
  'media.autoplay.blocking_policy 0'
  'media.autoplay.block-webaudio false'
  # --- fresh profile / headless hygiene ---
  'browser.shell.checkDefaultBrowser false'
  'browser.startup.homepage_override.mstone "ignore"'
  'browser.startup.page 0'
  'browser.startup.homepage "about:blank"'
  'startup.homepage_welcome_url ""'
  'startup.homepage_welcome_url.additional ""'
  'browser.aboutwelcome.enabled false'
  'browser.tabs.warnOnClose false'
  'browser.warnOnQuit false'
  'browser.sessionstore.resume_from_crash false'
  'toolkit.startup.max_resumed_crashes -1'
  'browser.newtabpage.enabled false'
  'browser.dom.window.dump.enabled true'           # dump() from pages goes to stderr
  # --- no traffic to Mozilla or anyone else ---
  'network.dns.disabled true'                      # no DNS at all (localhost still works, resolved
                                                   # internally); the one thing that silenced
                                                   # firefox.settings.services.mozilla.com (strace)
  'app.update.disabledForTesting true'
  'app.update.auto false'
  'app.normandy.enabled false'
  'app.normandy.api_url ""'
  'app.shield.optoutstudies.enabled false'
  'messaging-system.rsexperimentloader.enabled false'  # Nimbus experiments
  'datareporting.policy.dataSubmissionEnabled false'
  'datareporting.healthreport.uploadEnabled false'
  'toolkit.telemetry.enabled false'
  'toolkit.telemetry.unified false'
  'toolkit.telemetry.archive.enabled false'
  'toolkit.telemetry.server "http://127.0.0.1:9/"'
  'toolkit.telemetry.shutdownPingSender.enabled false'
  'toolkit.telemetry.newProfilePing.enabled false'
  'toolkit.telemetry.firstShutdownPing.enabled false'
  'browser.ping-centre.telemetry false'
  'browser.newtabpage.activity-stream.feeds.telemetry false'
  'browser.newtabpage.activity-stream.telemetry false'
  'browser.newtabpage.activity-stream.feeds.section.topstories false'
  'browser.newtabpage.activity-stream.feeds.topsites false'
  'browser.newtabpage.activity-stream.feeds.snippets false'
  'browser.safebrowsing.malware.enabled false'
  'browser.safebrowsing.phishing.enabled false'
  'browser.safebrowsing.downloads.enabled false'
  'browser.safebrowsing.downloads.remote.enabled false'
  'browser.safebrowsing.blockedURIs.enabled false'
  'browser.safebrowsing.provider.google.updateURL ""'
  'browser.safebrowsing.provider.google4.updateURL ""'
  'browser.safebrowsing.provider.mozilla.updateURL ""'
  'network.captive-portal-service.enabled false'
  'network.connectivity-service.enabled false'
  'network.trr.mode 5'                             # no DNS-over-HTTPS
  'network.dns.disablePrefetch true'
  'network.prefetch-next false'
  'network.http.speculative-parallel-limit 0'
  'network.predictor.enabled false'
  'services.settings.server "http://127.0.0.1:9/"' # ignored by release builds (still looked up without
                                                   # network.dns.disabled); harmless
  'extensions.update.enabled false'
  'extensions.getAddons.cache.enabled false'
  'extensions.blocklist.enabled false'
  'extensions.systemAddon.update.enabled false'
  'extensions.autoDisableScopes 15'
  'browser.search.update false'
  'browser.region.network.url ""'
  'browser.region.update.enabled false'
  'geo.provider.network.url ""'
  'identity.fxaccounts.enabled false'
  'browser.discovery.enabled false'
  'media.gmp-manager.url "http://127.0.0.1:9/"'   # no OpenH264 / Widevine downloads
  'media.gmp-gmpopenh264.autoupdate false'
  'media.gmp-gmpopenh264.enabled false'
  'media.gmp-widevinecdm.enabled false'
  'media.eme.enabled false'
  'security.OCSP.enabled 0'
  'security.remote_settings.crlite_filters.enabled false'
  'security.remote_settings.intermediates.enabled false'
  'browser.contentblocking.report.lockwise.enabled false'
  'signon.management.page.breach-alerts.enabled false'
  'browser.topsites.contile.enabled false'
  'browser.urlbar.suggest.quicksuggest.sponsored false'
  'browser.urlbar.quicksuggest.enabled false'
  'network.connectivity-service.IPv4.url ""'
  'network.connectivity-service.IPv6.url ""'
  'captivedetect.canonicalURL ""'
)

{
  for p in "${prefs[@]}"; do
    name="${p%% *}"; value="${p#* }"
    drop=0
    for o in ${LAB_OMIT_PREFS:-}; do case "$name" in "$o"*) drop=1 ;; esac; done
    [ "$drop" = 1 ] || echo "user_pref(\"$name\", $value);"
  done
  if [ -n "${LAB_EXTRA_PREFS:-}" ]; then cat "$LAB_EXTRA_PREFS"; fi
} >"$profile/user.js"

args=(--headless --no-remote --new-instance --profile "$profile")
bidi_port="${LAB_BIDI_PORT:-0}"
[ "$bidi_port" != none ] && args+=(--remote-debugging-port="$bidi_port")

child=""
cleanup() {
  if [ -n "$child" ]; then
    # The whole process group (parent, content/socket/RDD/GPU processes, crash helper) is ours.
    kill -TERM -- "-$child" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$child" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.1; done
  fi
  [ "${LAB_KEEP_PROFILE:-0}" = 1 ] || rm -rf "$profile" 2>/dev/null || rm -rf "$profile" || true
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# setsid: Firefox and its child processes get their own process group, so cleanup ends all.
HOME="$profile/home" TMPDIR="$profile/tmp" XDG_CONFIG_HOME="$profile/home/.config" \
XDG_CACHE_HOME="$profile/home/.cache" XDG_RUNTIME_DIR="$profile/tmp" \
MOZ_HEADLESS=1 MOZ_CRASHREPORTER_DISABLE=1 MOZ_DISABLE_AUTO_SAFE_MODE=1 \
  setsid "$bin" "${args[@]}" "$@" "$url" >>"$log" 2>&1 </dev/null &
child=$!
echo "firefox-webrtc: pid=$child profile=$profile" >&2

if [ "$bidi_port" != none ]; then
  ws=""
  for _ in $(seq 1 $(( ${LAB_BIDI_TIMEOUT:-30} * 10 ))); do
    ws="$(grep -o -m1 'WebDriver BiDi listening on ws://[^ ]*' "$log" 2>/dev/null | sed 's/.* on //' || true)"
    [ -n "$ws" ] && break
    kill -0 "$child" 2>/dev/null || { echo "firefox-webrtc: firefox exited before BiDi was up; log:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$ws" ] || { echo "firefox-webrtc: no 'WebDriver BiDi listening' line within ${LAB_BIDI_TIMEOUT:-30} s" >&2; exit 1; }
  echo "firefox-webrtc: bidi=$ws" >&2
fi
wait "$child"
