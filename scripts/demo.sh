#!/bin/sh
# `make demo`: the end-to-end path that exists today, on embedded defaults
# (SQLite metadata, a local artifact folder, in-process execution). It says what it does.
set -eu
DEMO=${DEMO_DIR:-demo-project}
step() { printf '\n==> %s\n' "$*"; }

step "Creating a fresh example project in ./$DEMO (shipyard init --example credit-risk)"
rm -rf "$DEMO"
shipyard init --example credit-risk "$DEMO"
cd "$DEMO"
git init -q . 2>/dev/null && git add -A >/dev/null 2>&1 && \
  git -c user.name=demo -c user.email=demo@localhost commit -qm "example project" || true

step "Versioning the raw data (shipyard data add data/raw.csv)"
shipyard data add data/raw.csv

step "Running the pipeline: prepare -> train -> evaluate (shipyard run)"
shipyard run

step "Running it again: nothing changed, so nothing runs"
shipyard run

step "Changing one parameter (train.C 1.0 -> 0.3) and asking what is out of date"
sed -i.bak 's/C: 1.0/C: 0.3/' params.yaml && rm -f params.yaml.bak
shipyard status

step "Re-running: only train and evaluate run; prepare is reused from the cache"
shipyard run

step "Runs recorded with their lineage (shipyard runs; shipyard diff)"
shipyard runs
set -- $(shipyard runs --json | python -c "import json,sys; r=json.load(sys.stdin); print(r[1]['id'], r[0]['id'])")
shipyard diff "$1" "$2"

step "Deleting the model: the next run restores it from the artifact store"
rm -rf model
shipyard run

step "Pushing every versioned object to a remote store (a local folder here; s3:// works too)"
shipyard data push --remote ../demo-remote

step "Quality gates on the candidate (shipyard check): report.md for the PR, report.html"
if shipyard check --output reports/v1; then echo "all gates passed"; else
  echo "a gate failed (see reports/v1/report.md); the demo goes on to show governance"; fi

step "Governance: users with roles, then register with its model card and gate results"
shipyard users add admin --role admin
SHIPYARD_USER=admin shipyard users add alice --role developer
SHIPYARD_USER=admin shipyard users add bob --role approver
export SHIPYARD_USER=alice
shipyard register credit-risk model --gates reports/v1/report.json   # card: MODEL_CARD.md
shipyard request credit-risk:1 || true
SHIPYARD_USER=alice shipyard approve credit-risk:1 || echo "(refused, as it should be)"
SHIPYARD_USER=bob shipyard approve credit-risk:1 --comment "numbers look right"
shipyard promote credit-risk:1 || echo "(policy refused: see the reason above)"

step "A second candidate (C=0.3 is in params.yaml now), checked, approved and promoted"
sed -i.bak 's/C: 0.3/C: 2.0/' params.yaml && rm -f params.yaml.bak
shipyard run
shipyard check --output reports/v2 || true
shipyard register credit-risk model --gates reports/v2/report.json
SHIPYARD_USER=bob shipyard approve credit-risk:2
shipyard promote credit-risk:2 || true
shipyard models credit-risk

step "Serving: the gateway on 127.0.0.1, a 90/10 split, one prediction"
PORT=${DEMO_PORT:-18080}
shipyard routing set credit-risk --split 1=90,2=10 --sticky header:x-user-id
shipyard serve --port "$PORT" >../demo-serve.log 2>&1 &
SERVER=$!
python - "$PORT" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
row = {"age": 41, "income": 52000.0, "debt_ratio": 0.31, "history_years": 12,
       "amount": 9000.0, "purpose": "car"}
for _ in range(120):
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/credit-risk/predict", json.dumps(row).encode(),
            {"content-type": "application/json", "x-user-id": "demo-user"})
        print(json.dumps(json.load(urllib.request.urlopen(request, timeout=5)), indent=2))
        break
    except OSError:
        time.sleep(0.5)
PY
kill $SERVER; wait $SERVER 2>/dev/null || true

step "Rollback: production goes back to the previous version, in one transaction"
shipyard rollback credit-risk --yes || true
shipyard models credit-risk

step "Checking the audit log's hash chain"
shipyard audit verify
shipyard audit log | tail -8

cat <<MSG

Done. The demo project is in ./$DEMO. What ran:
  - a cached 3-stage pipeline with lineage in .shipyard/shipyard.db (SQLite) and
    outputs in .shipyard/artifacts (content-addressed, blake3); a param change re-ran
    exactly the stages that depend on it; a deleted output came back from the cache;
  - quality gates with reports in reports/v1 and reports/v2 (open report.html);
  - the registry: versions with model cards, four-eyes approval, promotion, rollback;
  - the gateway serving a 90/10 split with sticky users (log in .shipyard/logs/serving);
  - a tamper-evident audit log of every change.
Not in this demo yet (being built): canary analysis with automatic rollback, drift
monitoring and alerts, the dashboard, CI templates.
MSG
