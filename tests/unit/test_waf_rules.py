"""The sandbox WAF's rule evaluation and the corpora, without processes: the project's
attack corpus is blocked >= 99 % per category by the default Web ACL, the tricky-shopper
corpus falsely blocked <= 1 %; AWS's evaluation order, Count mode, rate rules, and the
Web ACLs AWS refuses."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from peakready.errors import BadInput
from peakready.waf import corpus, defaults, detect, webacl
from peakready.waf.evaluate import CompiledAcl
from peakready.waf.request import WafRequest


def _rates(acl: dict, engine) -> tuple[dict[str, float], float, list]:
    compiled = CompiledAcl(acl, engine)
    total, blocked = Counter(), Counter()
    for i, req in enumerate(corpus.attack_requests()):
        d = compiled.evaluate(req.to_waf_request(f"192.0.2.{i % 200}"), now=float(i))
        total[req.category] += 1
        blocked[req.category] += d.action == "BLOCK"
    fb = []
    benign = corpus.tricky_shoppers()
    for i, s in enumerate(benign):
        d = compiled.evaluate(s.to_waf_request(f"198.18.0.{i % 250 + 1}"), now=float(i))
        if d.action == "BLOCK":
            fb.append((s.text[:30], d.terminating_rule, d.group_rule))
    return {c: blocked[c] / total[c] for c in total}, len(fb) / len(benign), fb


@pytest.mark.parametrize("which", ["auto", "fallback"])
def test_default_acl_blocks_the_corpus_and_not_the_tricky_shoppers(which):
    engine = detect.engine(which)
    rates, false_rate, fb = _rates(defaults.default_acl(), engine)
    assert set(rates) == set(corpus.categories()) - {"credential-stuffing"}
    low = {c: r for c, r in rates.items() if r < 0.99}
    assert not low, f"{engine.name}: categories under 99 %: {low}"
    assert false_rate <= 0.01, f"{engine.name}: tricky shoppers blocked: {fb}"


def test_sqli_group_in_count_mode_lets_sqli_through_and_records_the_count():
    acl = defaults.default_acl()
    for rule in acl["Rules"]:
        if rule["Name"] in ("AWSManagedRulesSQLiRuleSet",):
            rule["OverrideAction"] = {"Count": {}}
    compiled = CompiledAcl(acl, detect.engine("fallback"))
    req = corpus.place("sqli", "query", "1 UNION SELECT password FROM users--")
    d = compiled.evaluate(req.to_waf_request())
    assert d.action == "ALLOW" and d.terminating_rule == "Default_Action"
    assert ("AWSManagedRulesSQLiRuleSet", "SQLi_QUERYARGUMENTS") in d.counted


def test_priority_order_and_terminating_allow():
    acl = defaults.default_acl()
    acl["Rules"].append({"Name": "AllowOffice", "Priority": 5, "Action": {"Allow": {}},
                         "Statement": {"IPSetReferenceStatement": {"ARN": "arn:office"}},
                         "VisibilityConfig": defaults._vc("AllowOffice")})
    compiled = CompiledAcl(acl, detect.engine("fallback"), {"arn:office": ["10.9.0.0/16"]})
    req = corpus.place("xss", "query", "<script>alert(1)</script>")
    assert compiled.evaluate(req.to_waf_request("10.9.1.2")).terminating_rule == "AllowOffice"
    assert compiled.evaluate(req.to_waf_request("10.8.1.2")).action == "BLOCK"


def test_rate_rule_below_a_cgnat_surge_blocks_that_address_only():
    acl = defaults.default_acl()
    acl["Rules"][0]["Statement"]["RateBasedStatement"]["Limit"] = 50
    compiled = CompiledAcl(acl, detect.engine("fallback"))

    def shopper(ip: str, t: float):
        req = WafRequest("GET", "/api/products?category=shoes", [
            ("host", "shop"), ("user-agent", corpus.BROWSER_UA), ("x-forwarded-for", ip)])
        return compiled.evaluate(req, now=t)
    decisions = [shopper("100.64.0.1", i * 0.5) for i in range(60)]  # 60 in 30 s
    assert decisions[49].action == "ALLOW" and decisions[50].action == "BLOCK"
    assert decisions[50].terminating_rule == "RateLimitPerIP"
    assert shopper("198.18.0.9", 31.0).action == "ALLOW"
    assert shopper("100.64.0.1", 31.0 + 300).action == "ALLOW"  # the window moved on


def _with(mutate) -> dict:
    acl = copy.deepcopy(defaults.default_acl())
    mutate(acl)
    return acl


@pytest.mark.parametrize("mutate, field", [
    (lambda a: a["Rules"][1].update(Priority=0), "Rules[1].Priority: duplicate priority 0"),
    (lambda a: a["Rules"][0].update(Statement={"FooStatement": {}}),
     "Rules[0].Statement: unknown statement 'FooStatement'"),
    (lambda a: a["Rules"][2].pop("VisibilityConfig"), "Rules[2].VisibilityConfig: required"),
    (lambda a: a["Rules"][0]["Statement"]["RateBasedStatement"].update(Limit=5),
     "Rules[0].Statement.RateBasedStatement.Limit: an integer >= 10"),
    (lambda a: a.pop("DefaultAction"), "DefaultAction: must be exactly one of"),
])
def test_web_acls_aws_refuses_are_refused_naming_the_field(mutate, field):
    found = webacl.problems(_with(mutate))
    assert found and found[0].startswith(field), found
    with pytest.raises(BadInput, match="Web ACL"):
        webacl.validate(_with(mutate))


def test_plan_with_a_bad_web_acl_file_exits_2_before_anything(tmp_path):
    import json

    from peakready.plan import load_plan

    bad = _with(lambda a: a["Rules"][1].update(Priority=0))
    (tmp_path / "acl.json").write_text(json.dumps(bad))
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: x\ntarget: {{kind: sandbox, web_acl: {tmp_path / 'acl.json'}}}\n"
                    "load: {profile: scenarios/profiles/demo.csv, attacks: {rate: 0.02}}\n")
    with pytest.raises(BadInput, match=r"target\.web_acl.*Rules\[1\]\.Priority"):
        load_plan(plan)
    plan.write_text("name: x\nload: {profile: scenarios/profiles/demo.csv, "
                    "attacks: {categories: [sqli-nowhere]}}\n")
    with pytest.raises(BadInput, match=r"load\.attacks\.categories\[0\]"):
        load_plan(plan)
