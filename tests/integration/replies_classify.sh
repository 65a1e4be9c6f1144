#!/bin/bash
# NAME
#	replies_classify.sh - reply classes: the shipped rules, admin rules,
#	configuration errors, and the class through a real delivery
# DESCRIPTION
#	1. Every line of tests/data/replies.tsv (providers' published reply
#	   texts, at least 40) through `queuerun classify` with the shipped
#	   conf/replies.conf: the class must be the one the table gives, and
#	   the rule is named with its file:line.
#	2. Admin rules: tried before the shipped ones, and one named like a
#	   shipped rule replaces it (also when it comes before the include).
#	3. Configuration errors: a bad class, a bad regular expression, a
#	   bad action, an "after" without an action, an undeclared provider:
#	   exit 78 and "file:line:" of the rule.
#	4. Delivery: one message to one recipient per table line whose
#	   reply is an SMTP reply; the sink (smtpsink.py --rcpt-replies)
#	   answers each RCPT TO with that line's reply. Then: each
#	   recipient's class in `queuerun show` and in its smtp log line
#	   (class=...) is the table's, the reason kept is the server's own
#	   words, and `mailq` shows the class after a deferred recipient's
#	   reason. Local failures too: an NXDOMAIN domain (bad-domain) and
#	   an MX that refuses connections (transient); and an admin rule
#	   with a provider applies to that provider's domain only.
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN" "$MXL_SRC/conf/replies.conf"
TABLE=$MXL_SRC/tests/data/replies.tsv
RULES=$MXL_SRC/conf/replies.conf

section "the table through queuerun classify"
setup classify "include(\"$MXL_SRC/conf/providers.conf\")" \
    "include(\"$RULES\")"
n=0
while IFS=$'\t' read -r prov cls text; do
	case $prov in '#'*|'') continue ;; esac
	n=$((n + 1))
	if [ "$prov" = - ]; then
		assert_exit 0 "$QUEUERUN" classify "$text"
	else
		assert_exit 0 "$QUEUERUN" classify --provider "$prov" "$text"
	fi
	assert_eq "$cls" "$(sed -n 's/^class: //p' "$OUT")" "class of: $text"
	assert_match "$(sed -n 's/^rule: //p' "$OUT")" "^[a-z0-9.-]+ \\($RULES:[0-9]+\\)$" \
	    "rule of: $text"
done <"$TABLE"
assert_true "[ $n -ge 40 ]" "at least 40 reply texts in the table ($n)"
# The rule's line is where it opens.
assert_exit 0 "$QUEUERUN" classify "550 5.1.1 <a@b>: user unknown"
line=$(sed -n 's/^rule: bad-mailbox (.*:\([0-9]*\))$/\1/p' "$OUT")
assert_eq 'reply "bad-mailbox" {' "$(sed -n "${line}p" "$RULES")" "line named for rule bad-mailbox"
assert_eq "5.1.1" "$(sed -n 's/^status: //p' "$OUT")" "status read from the reply"
assert_eq "550" "$(sed -n 's/^code: //p' "$OUT")" "code read from the reply"
# Actions are shown as written.
assert_exit 0 "$QUEUERUN" classify "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred"
assert_eq "suspend 1h" "$(sed -n 's/^action: //p' "$OUT")" "action of yahoo-tss04"
assert_exit 0 "$QUEUERUN" classify "421-4.7.28 unusual rate of unsolicited mail"
assert_match "$(sed -n 's/^action: //p' "$OUT")" '^throttle [0-9]+/[smhd] for [0-9]+[smhd]$' "action of gmail 4.7.28"
# Something no rule knows: the built-in rule.
assert_exit 0 "$QUEUERUN" classify "599 9.9.9 who knows"
assert_eq "unknown" "$(sed -n 's/^class: //p' "$OUT")" "class of an unknown reply"
assert_eq "unknown (built-in)" "$(sed -n 's/^rule: //p' "$OUT")" "rule of an unknown reply"
assert_exit 64 "$QUEUERUN" classify
assert_exit 64 "$QUEUERUN" classify --provider nosuch "550 5.1.1 x"
assert_one_line_stderr "nosuch"

section "every shipped rule is listed in mxlane.conf(5), in order"
names=$(sed -n 's/^reply "\([^"]*\)" {$/\1/p' "$RULES")
listed=$(awk '/^\.SS The shipped rules/ {on = 1} /^\.SH SUPPRESSION/ {on = 0}
    on && prev == ".TP" && /^\.B / {sub(/^\.B /, ""); gsub(/\\-/, "-"); print} {prev = $0}' \
    "$MXL_SRC/man/mxlane.conf.5")
assert_eq "$names" "$listed" "rules of replies.conf and of mxlane.conf(5)"

section "admin rules come first; one named like a shipped rule replaces it"
setup admin 'provider internal { domains = { "internal.test" } }' \
    'reply "bad-mailbox" { status = "5.1.1" class = "policy" }' \
    "include(\"$RULES\")" \
    'reply "our-gateway" { provider = "internal" text = "mailbox over limit" class = "quota" }'
assert_exit 0 "$QUEUERUN" classify "550 5.1.1 user unknown"
assert_eq "policy" "$(sed -n 's/^class: //p' "$OUT")" "admin rule replacing bad-mailbox"
assert_match "$(sed -n 's/^rule: //p' "$OUT")" "^bad-mailbox \\($CONF:[0-9]+\\)$" "the admin's definition wins"
assert_exit 0 "$QUEUERUN" classify --provider internal "550 5.7.1 mailbox over limit"
assert_eq "quota" "$(sed -n 's/^class: //p' "$OUT")" "admin rule after the include, tried first"
assert_exit 0 "$QUEUERUN" classify "550 5.7.1 mailbox over limit"
assert_eq "policy" "$(sed -n 's/^class: //p' "$OUT")" "provider rule does not match without the provider"

section "configuration errors name file:line"
bad_rule() {
	local what=$1 rule=$2 needle=$3
	setup "bad-$what" "" "" "$rule"
	assert_exit 78 "$QUEUERUN" classify "550 5.1.1 x"
	assert_one_line_stderr "$needle"
	# The rule is on the config's 11th line (10 written by lib.sh + "" + "").
	assert_contains "$(last_err)" "$CONF:$(grep -n '^reply' "$CONF" | cut -d: -f1):" "$what: file:line"
}
bad_rule class 'reply "x" { class = "bogus" }' 'class "bogus"'
bad_rule noclass 'reply "x" { code = "550" }' 'class is missing'
bad_rule regex 'reply "x" { text = "(unclosed" class = "policy" }' 'not a regular expression'
bad_rule action 'reply "x" { class = "policy" action = "explode 1h" }' 'action "explode 1h"'
bad_rule rate 'reply "x" { class = "policy" action = "throttle 5/fortnight for 1h" }' 'throttle RATE for DURATION'
bad_rule after 'reply "x" { class = "policy" after = "3 in 10m" }' 'without an action'
bad_rule after2 'reply "x" { class = "policy" action = "suspend 1h" after = "three in 10m" }' 'N in DURATION'
bad_rule code 'reply "x" { class = "policy" code = "5xx" }' 'code "5xx"'
bad_rule provider 'reply "x" { class = "policy" provider = "nosuch" }' 'provider "nosuch"'
setup bad-key 'suppress_classes = { "bad-mailbox", "nonsense" }'
assert_exit 78 "$QUEUERUN" classify "550 5.1.1 x"
assert_one_line_stderr '"nonsense" is not a reply class'
# sendmail reads the same file and refuses it the same way.
setup bad-sendmail "" "" 'reply "x" { class = "bogus" }'
printf 'Subject: x\n\nx\n' | assert_exit 78 "$SENDMAIL" -t -i a@example.com
assert_contains "$(last_err)" 'class "bogus"' "sendmail's error"

section "classes through delivery"
IP_MX=127.0.0.150
IP_REFUSE=127.0.0.151
cat >"$SRV/zone" <<EOF
src.example	MX 10 mx.src.example
mx.src.example	A $IP_MX
rcpt.test	MX 10 mx.rcpt.test
mx.rcpt.test	A $IP_MX
other.test	MX 10 mx.rcpt.test
refused.test	MX 10 mx.refused.test
mx.refused.test	A $IP_REFUSE
EOF
start_dns "$SRV/zone"
: >"$SRV/replies"
i=0
declare -A want
while IFS=$'\t' read -r prov cls text; do
	case $prov in '#'*|'') continue ;; esac
	[[ $text =~ ^[45][0-9][0-9][\ -] ]] || continue
	i=$((i + 1))
	printf 't%d\t%s\n' "$i" "$text" >>"$SRV/replies"
	want[t$i]=$cls
done <"$TABLE"
ntable=$i
printf 'gw\t550 5.7.1 our gateway says no\n' >>"$SRV/replies"
assert_true "[ $ntable -ge 40 ]" "at least 40 SMTP replies delivered ($ntable)"
start_sink sink --listen $IP_MX:@P@ --rcpt-replies "$SRV/replies" --max-rcpts 200
setup deliver "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
    'provider internal { domains = { "rcpt.test" } }' \
    'reply "gateway" { provider = "internal" text = "our gateway" class = "inactive-mailbox" }' \
    "include(\"$RULES\")"
rcpts=()
for ((k = 1; k <= ntable; k++)); do rcpts+=("t$k@rcpt.test"); done
rcpts+=(nobody@nxdomain.test someone@refused.test gw@rcpt.test gw@other.test)
submit_file "$(message_file classes)" -f alice@src.example -i "${rcpts[@]}"
ID=$NEWID
assert_exit 0 "$QUEUERUN" run
for ((k = 1; k <= ntable; k++)); do
	a=t$k@rcpt.test
	assert_eq "${want[t$k]}" "$(rcpt_get "$ID" "$a" class)" "class of $a in queuerun show ($(sed -n "${k}p" "$SRV/replies" | cut -f2 | cut -c1-60))"
	l=$(loglines "$ID" "$a" | tail -1)
	assert_match "$l" ", class=${want[t$k]}\$" "log line of $a"
	# The reason kept is the server's own words.
	reply=$(sed -n "${k}p" "$SRV/replies" | cut -f2 | cut -c5-40)
	assert_contains "$(rcpt_get "$ID" "$a" last_response)" "$reply" "reason kept for $a"
done
assert_eq "bad-domain" "$(rcpt_get "$ID" nobody@nxdomain.test class)" "class of an NXDOMAIN recipient"
assert_match "$(loglines "$ID" nobody@nxdomain.test)" 'status=bounced .*, class=bad-domain$' "log of the NXDOMAIN recipient"
assert_eq "transient" "$(rcpt_get "$ID" someone@refused.test class)" "class of a refused connection"
assert_match "$(loglines "$ID" someone@refused.test)" 'status=deferred \(connect to .*\), class=transient$' "log of the refused connection"
# The provider of the destination reaches the rules: the same reply is
# the admin rule's class from internal's domain, the shipped one's from
# another.
assert_eq "inactive-mailbox" "$(rcpt_get "$ID" gw@rcpt.test class)" "class with the provider's rule"
assert_eq "policy" "$(rcpt_get "$ID" gw@other.test class)" "class of the same reply from another provider"
# mailq: the class after the reason, inside the parentheses.
q=$("$SENDMAIL" -bp)
assert_match "$q" '^ *\(connect to mx\.refused\.test\[127\.0\.0\.151\]:[0-9]+: Connection refused; class=transient\)$' "mailq reason line with the class"
finish
