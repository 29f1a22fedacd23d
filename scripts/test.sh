#!/usr/bin/env bash
# The whole check, as CI runs it (`.ci/run`): install what the integration tests need
# (only when missing), then formatting, clippy, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages the tests start for real --------------------------------------
# tests/it/promstack.rs runs Prometheus (/usr/bin/prometheus) and Alertmanager
# (/usr/bin/prometheus-alertmanager) for the pipeline tests (tests/it/alertmanager.rs and
# its own), tests/it/email.rs an aiosmtpd capture server (/usr/bin/python3),
# tests/it/kannel.rs Kannel's bearerbox, smsbox and fake SMSC (kannel-extras),
# tests/it/ircnet.rs an IRC network: InspIRCd with Anope services (SASL, accounts) and
# the ZNC bouncer (its TLS listener gets a certificate made with openssl),
# tests/it/web.rs (through tests/it/browser.rs) a headless Chromium driven by ChromeDriver
# (/usr/bin/chromium, /usr/bin/chromedriver) that clicks through the web view,
# tests/it/schedule_web.rs reads the iCalendar feeds with Python's icalendar, and
# tests/it/deploy.rs checks the systemd unit with systemd-analyze and the rules with promtool,
# and the PostgreSQL store's tests start PostgreSQL 15 servers of their own
# (src/store/postgres/scratch.rs, run as the postgres user when root).
missing=()
need() { # need PACKAGE FILE: install PACKAGE unless FILE exists
  if [ ! -e "$2" ]; then missing+=("$1"); fi
}
need prometheus-alertmanager /usr/bin/prometheus-alertmanager
need prometheus /usr/bin/prometheus
need python3-aiosmtpd /usr/lib/python3/dist-packages/aiosmtpd
need python3-icalendar /usr/lib/python3/dist-packages/icalendar
need kannel /usr/sbin/bearerbox
need kannel-extras /usr/lib/kannel/test/fakesmsc
need inspircd /usr/sbin/inspircd
need anope /usr/sbin/anope
need znc /usr/bin/znc
need openssl /usr/bin/openssl
need systemd /usr/bin/systemd-analyze
need chromium /usr/bin/chromium
need chromium-driver /usr/bin/chromedriver
# The fuzz step below builds libFuzzer, which is C++.
need g++ /usr/bin/g++
need postgresql /usr/lib/postgresql/15/bin/initdb
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    echo "error: ${missing[*]} is missing and installing it needs root or sudo:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Static checks ----------------------------------------------------------------
echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets -- -D warnings

# --- Tests: unit tests and tests/it, built once ------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
  echo "==> cargo nextest run"
  cargo nextest run --workspace --no-fail-fast
else
  echo "==> cargo test (cargo-nextest is not installed)"
  cargo test --workspace --no-fail-fast
fi

# --- Fuzz targets: every parser of outside input, briefly ---------------------------
# fuzz/ is its own workspace (README.md, "Fuzzing"). cargo-fuzz passes the compiler flags
# of nightly Rust; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. No sanitizer:
# tocsin forbids unsafe code, and a panic, an overflow or a failed invariant is a crash.
# Each target starts from its committed seeds (fuzz/seeds/) and runs for FUZZ_SECONDS;
# a crash fails the run and leaves its input in fuzz/artifacts/. The brief run is built in
# the dev profile (with overflow checks): it compiles in a fraction of a release build's
# time; the campaign in the README runs release builds.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> cargo install cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
echo "==> cargo fuzz build"
RUSTC_BOOTSTRAP=1 cargo fuzz build --dev --sanitizer none
for target in $(cargo fuzz list); do
  echo "==> cargo fuzz run $target (${FUZZ_SECONDS:-5} s)"
  mkdir -p "fuzz/corpus/$target"
  RUSTC_BOOTSTRAP=1 cargo fuzz run --dev --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="${FUZZ_SECONDS:-5}" -print_final_stats=1
done
