#!/usr/bin/env bash
# Posts the two sample submissions to a local leadrouterd (make run), signed
# with openssl the way the form tools sign them. Usage: examples/intake/post.sh
set -euo pipefail
cd "$(dirname "$0")"
base=${LEADROUTER_HTTP:-http://127.0.0.1:8080}

# site-form: Standard Webhooks. The key is the base64 after "whsec_"; the
# signature is base64(HMAC-SHA256(key, "<webhook-id>.<timestamp>.<body>")).
id="msg_$(date +%s)"
ts=$(date +%s)
key_hex=$(sed 's/^whsec_//' site-form.secret | base64 -d | od -An -tx1 | tr -d ' \n')
sig=$({ printf '%s.%s.' "$id" "$ts"; cat site-form.json; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64)
curl -sS -X POST "$base/v1/intake/default/site-form" -H 'Content-Type: application/json' \
	-H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" \
	--data-binary @site-form.json
echo

# contact-form: HMAC-SHA256 of the raw body, hex, in X-Signature.
sig=$(openssl dgst -sha256 -hmac "$(cat contact-form.secret)" -r < contact-form.txt | cut -d' ' -f1)
curl -sS -X POST "$base/v1/intake/default/contact-form" -H 'Content-Type: application/x-www-form-urlencoded' \
	-H "X-Signature: $sig" --data-binary @contact-form.txt
echo
