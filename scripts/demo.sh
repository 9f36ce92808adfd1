#!/usr/bin/env bash
# The main job on the embedded defaults: lint a plugin, then watch its trust tier and install
# behaviour follow the evidence, decided by the default Rego policies (./dev demo runs this).
set -uo pipefail
cd "$(dirname "$0")/.."
CORTEX=${CORTEX:-.venv/bin/cortex}
E=examples/demo
IMAGE=127.0.0.1:5000/demo/hello@sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf
# A fixed reference time keeps the demo's output the same on every run.
V=(plugin verify "$E/manifest.yaml" --image "$IMAGE" --namespace demo --now 2026-11-25T00:00:00Z)

step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
run() {  # show the command, run it, show its exit code
  printf '$ cortex %s\n' "$*"
  "$CORTEX" "$@"
  printf '(exit %s)\n' "$?"
}

step "1. Lint a manifest (every problem with file:line:col and a fix)"
run manifest lint examples/plugins/hello/manifest.yaml
run manifest lint examples/plugins/broken/manifest.yaml

step "2. Manifest only: Experimental, install with a warning"
run "${V[@]}"

step "3. + a passing Trivy scan bound to the digest + passing tests: Community, install with a notice"
run "${V[@]}" --scan "$E/trivy-clean.json" --scan-scanners vuln,secret --tests "$E/junit.xml"

step "4. + a real Sigstore signature, a core-team review, 85 days in production reported by two other organizations, and the organization's data trusting the signer: Verified, auto-install"
run "${V[@]}" --scan "$E/trivy-clean.json" --scan-scanners vuln,secret --tests "$E/junit.xml" \
    --bundle "$E/hello.sigstore.json" --review "$E/review.json" --usage "$E/usage.json" --data "$E/org.yaml"

step "5. A scan with CRITICAL vulnerabilities: back to Experimental; CI with --fail-on warn fails"
run "${V[@]}" --scan "$E/trivy-critical.json" --scan-scanners vuln,secret --tests "$E/junit.xml" --fail-on warn

step "6. A signature over another artifact (mix-and-match): dropped, never used"
run "${V[@]}" --bundle "$E/other-artifact.sigstore.json" --data "$E/org.yaml"

step "7. The same decision as SARIF for GitHub code scanning (first lines)"
"$CORTEX" "${V[@]}" --format sarif | head -12

step "8. The default policies' own tests and coverage"
run policy test --min-coverage 90
