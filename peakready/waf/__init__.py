"""AWS WAF under campaign load: the Web ACL model (validation as AWS refuses), its
evaluation (the sandbox balancer runs it on the request path), the detection engines and
the attack / tricky-shopper corpora the load mixes in. See docs/waf.md.

Pure modules, no Locust, no moto: the balancer, the plan loader, the load and analysis
each import only the part they need.
"""
