"""The sandbox WAF end to end: the default Web ACL blocks on the balancer's request path
with AWS's 403, ``update_web_acl`` (lock token) changes it live, and AWS/WAFV2 metrics
arrive in CloudWatch."""

from __future__ import annotations

import http.client
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from peakready.waf import corpus
from tests.control.conftest import wait_for


def _get(url: str, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", path, headers={"User-Agent": corpus.BROWSER_UA, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def test_default_web_acl_blocks_attacks_not_shoppers_and_changes_live(sandbox_status, aws):
    url = sandbox_status["storefront_url"]
    sqli = f"/api/search?q={quote(chr(39) + ' UNION SELECT password FROM users--')}"
    status, body, headers = wait_for(lambda: (r := _get(url, sqli))[0] == 403 and r, 20,
                                     what="the default Web ACL on the balancer")
    assert b"403 Forbidden" in body and headers.get("Server") == "awselb/2.0"
    assert _get(url, f"/api/search?q={quote('O' + chr(39) + 'Neill')}")[0] == 200
    assert _get(url, "/api/search?q=" + quote("rock & roll <3"))[0] == 200

    wafv2 = aws("wafv2")
    summary = wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"][0]
    got = wafv2.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])
    acl = got["WebACL"]
    for rule in acl["Rules"]:  # SQLi group to Count, the custom header rule to Count
        if rule["Name"] == "AWSManagedRulesSQLiRuleSet":
            rule["OverrideAction"] = {"Count": {}}
    wafv2.update_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"],
                         DefaultAction=acl["DefaultAction"], Rules=acl["Rules"],
                         VisibilityConfig=acl["VisibilityConfig"], LockToken=got["LockToken"])
    wait_for(lambda: _get(url, sqli)[0] == 200, 10, what="the Count-mode Web ACL live")

    cw = aws("cloudwatch")
    end = datetime.now(UTC) + timedelta(seconds=5)

    def counted():
        time.sleep(0.5)
        res = cw.get_metric_data(StartTime=end - timedelta(minutes=5), EndTime=end,
                                 MetricDataQueries=[{"Id": "c", "MetricStat": {"Metric": {
                                     "Namespace": "AWS/WAFV2", "MetricName": "CountedRequests",
                                     "Dimensions": [
                                         {"Name": "Region", "Value": "eu-central-1"},
                                         {"Name": "Rule", "Value": "AWSManagedRulesSQLiRuleSet"},
                                         {"Name": "WebACL", "Value": acl["Name"]}]},
                                     "Period": 60, "Stat": "Sum"}}])
        return sum(res["MetricDataResults"][0]["Values"])
    assert wait_for(counted, 15, what="AWS/WAFV2 CountedRequests") >= 1
    blocked = cw.list_metrics(Namespace="AWS/WAFV2", MetricName="BlockedRequests")["Metrics"]
    assert any({"Name": "Rule", "Value": "ALL"} in m["Dimensions"] for m in blocked)
