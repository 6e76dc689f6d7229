#!/bin/sh
# The alert timeline of scenarios/bank-alerts.yaml (the bank peak with gpu/0
# crashing at 12:00 for 5 minutes) under the seed's rules
# (scenarios/prometheus/seed-alerts.yml) and under the SLO burn-rate rules
# fleetsim generates from `slo` (monitoring.slo_rules: availability and
# latency_p99, one rule group each), each routed by the
# seed's alertmanager.yml, on the shipped three nodes and on one node (the
# "before" case). Everything in the output comes from fleetsim's
# summary.json and events.jsonl.
#
#   scripts/alerting-report.sh [FLEETSIM_BINARY]            print the report
#   scripts/alerting-report.sh --update [FLEETSIM_BINARY]   rewrite it in docs/alerting.md
#
# The binary defaults to build/fleetsim. Needs python3. Takes about a minute
# (the burn-rate rules read up to 3 days of samples at every evaluation).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
bin=${1:-$root/build/fleetsim}
[ -x "$bin" ] || { echo "alerting-report: no fleetsim binary at $bin (build first, or pass its path)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/alerting-report-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
scen="$root/scenarios/bank-alerts.yaml"
printf 'groups: []\n' >"$tmp/no-rules.yml"

# name | pool size | rule set | overrides
runs="seed-3:3:seed:--set monitoring.slo_rules=false
burn-3:3:burn-rate:--set monitoring.rules=$tmp/no-rules.yml
seed-1:1:seed:--set monitoring.slo_rules=false --set pools.gpu.replicas=1
burn-1:1:burn-rate:--set monitoring.rules=$tmp/no-rules.yml --set pools.gpu.replicas=1"

echo "$runs" | while IFS=: read -r name nodes rules sets; do
  # shellcheck disable=SC2086 # $sets is a list of options
  "$bin" run "$scen" --quiet --out "$tmp/$name" $sets >/dev/null
  printf '%s\t%s\t%s\n' "$name" "$nodes" "$rules" >>"$tmp/index.tsv"
done

python3 - "$tmp" >"$tmp/report.md" <<'PY'
import json, re, sys

tmp = sys.argv[1]
runs = [line.rstrip("\n").split("\t") for line in open(f"{tmp}/index.tsv")]

def hms(t):
    t = int(round(t))
    return "%d:%02d:%02d" % (t // 3600, t % 3600 // 60, t % 60)

def span(d):
    if d >= 3600:
        return "%dh%02dm%02ds" % (d // 3600, d % 3600 // 60, d % 60)
    if d >= 60:
        return "%dm%02ds" % (d // 60, d % 60)
    return "%ds" % d

def rel(t, t0):
    if t is None:
        return "—"
    d = int(round(t - t0))
    return "%s (%s%s)" % (hms(t), "+" if d >= 0 else "-", span(abs(d)))

def delay(t, t0):
    if t is None:
        return "—"
    return span(int(round(t - t0)))

data = []
for name, nodes, rules in runs:
    s = json.load(open(f"{tmp}/{name}/summary.json"))
    ev = [json.loads(l) for l in open(f"{tmp}/{name}/events.jsonl")]
    data.append((name, nodes, rules, s, ev))

def label(nodes, rules):
    return "%s rules, %s node%s" % (rules, nodes, "" if nodes == "1" else "s")

print("| rules | nodes | first alert | detection | first notification | delay | alerts fired | notifications | false positives | requests failed |")
print("| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for name, nodes, rules, s, ev in data:
    al = s["alerting"]
    f = al["faults"][0]
    r = s["requests"]
    bad = r["failed"] + r["rejected"] + r["timed_out"]
    who = "%s (%s)" % (f["first_receiver"], f["first_integration"]) if f["first_receiver"] else "none"
    print("| %s | %s | %s | %s | %s | %s | %d | %d | %d | %d of %d |" % (
        rules, nodes, f["first_alert"] or "none", delay(f["first_firing_at"], f["start_s"]),
        who, delay(f["first_notified_at"], f["start_s"]), al["alerts_fired"], al["notifications"],
        len(al["false_positives"]), bad, r["generated"]))
print()
print("Detection and delay are counted from the crash (%s); a notification is one"
      " message through one integration (a receiver with a webhook and Slack sends two)."
      " Requests failed: 502 + 503 + 504 over the whole day." % hms(data[0][3]["alerting"]["faults"][0]["start_s"]))

for name, nodes, rules, s, ev in data:
    t0 = s["alerting"]["faults"][0]["start_s"]
    print()
    print("### %s" % label(nodes, rules))
    print()
    if not s["alerts"]:
        print("No alert went pending.")
        continue
    print("| alert | severity | receiver | pending | firing | resolved | notified | summary |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for a in s["alerts"]:
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            a["name"], a["severity"] or "", a["receiver"] or "", rel(a["pending_at"], t0),
            rel(a["firing_at"], t0), rel(a["resolved_at"], t0), rel(a["notified_at"], t0),
            (a.get("summary") or "").replace("|", "\\|")))
    notes = [e for e in ev if e["type"] == "notification"]
    print()
    if not notes:
        print("No notification was sent.")
        continue
    print("| sent | receiver | integration | firing | resolved | group |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    for e in notes:
        m = re.match(r"(\S+): (\d+) firing, (\d+) resolved, group (\{.*\}): ", e["detail"])
        print("| %s | %s | %s | %s | %s | `%s` |" % (rel(e["t_s"], t0), e["subject"], m.group(1),
                                                   m.group(2), m.group(3), m.group(4)))
PY

if [ "$update" = 1 ]; then
  doc="$root/docs/alerting.md"
  awk -v report="$tmp/report.md" '
    /<!-- alerting-report:begin -->/ { print; while ((getline line < report) > 0) print line; skip = 1; next }
    /<!-- alerting-report:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$tmp/doc" && cp "$tmp/doc" "$doc"
  echo "alerting-report: updated $doc" >&2
else
  cat "$tmp/report.md"
fi
