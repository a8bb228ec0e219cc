"""Identity, capabilities, authentication of user calls, project existence and the stack listing."""
import pytest

from psapi import assert_error, assert_ok, deployment, small_state, uid


def test_user_shape(api):
    u = assert_ok(api.get("/api/user"))
    # The CLI requires githubLogin and every organizations[].githubLogin to be non-empty (protocol 2.1).
    assert isinstance(u["githubLogin"], str) and u["githubLogin"]
    assert isinstance(u["organizations"], list) and u["organizations"]
    for o in u["organizations"]:
        assert isinstance(o["githubLogin"], str) and o["githubLogin"]
    assert isinstance(u.get("identities", []), list)
    assert u["tokenInfo"]["name"]


def test_default_org_shape(api):
    d = assert_ok(api.get("/api/user/organizations/default"))
    # No json tags on GetDefaultOrganizationResponse: the keys are GitHubLogin and Messages (protocol 2.3).
    assert isinstance(d["GitHubLogin"], str) and d["GitHubLogin"]
    assert isinstance(d.get("Messages", []), list)
    orgs = [o["githubLogin"] for o in assert_ok(api.get("/api/user"))["organizations"]]
    assert d["GitHubLogin"] in orgs


def test_capabilities_shape(api):
    caps = assert_ok(api.get("/api/capabilities"))["capabilities"]
    assert isinstance(caps, list)
    by_name = {}
    for c in caps:
        assert isinstance(c["capability"], str) and c["capability"]
        by_name[c["capability"]] = c
    assert "batch-encrypt" in by_name
    dsv = by_name["deployment-schema-version"]
    assert dsv["version"] == 1 and dsv["configuration"]["version"] >= 4
    # Delta uploads are advertised by default (cutoff 1 MiB), in the v2 form the CLI parses (a parse
    # error drops every capability, protocol 2.4).
    delta = by_name["delta-checkpoint-uploads-v2"]
    assert delta["version"] == 2 and delta["configuration"]["checkpointCutoffSizeBytes"] == 1048576
    assert "delta-checkpoint-uploads" not in by_name


USER_ROUTES = [("GET", "/api/user"), ("GET", "/api/user/organizations/default"), ("GET", "/api/capabilities"),
               ("GET", "/api/user/stacks")]


@pytest.mark.parametrize("method,path", USER_ROUTES)
def test_user_routes_need_a_valid_user_token(api, method, path):
    assert_error(api.call(method, path, token=False), 401)
    assert_error(api.call(method, path, token="definitely-not-the-token"), 401)
    assert_error(api.call(method, path, auth="Bearer " + api.server.token), 401)
    assert_error(api.call(method, path, auth="token "), 401)
    assert_error(api.call(method, path, auth=api.server.token), 401)
    # A lease token on a user route is refused as forbidden, whatever its value.
    assert_error(api.call(method, path, auth="update-token 0123456789abcdef"), 403)


def test_stack_routes_need_a_valid_user_token(api):
    st = api.new_stack()
    for method, path in [("GET", st.path), ("GET", st.path + "/export"), ("DELETE", st.path + "?force=true"),
                         ("POST", "/api/stacks/%s/%s" % (st.org, st.project)), ("POST", st.path + "/encrypt")]:
        body = {"stackName": "x", "plaintext": ""} if method == "POST" else None
        assert_error(api.call(method, path, body, token=False), 401)
        assert_error(api.call(method, path, body, token="wrong"), 401)
        assert_error(api.call(method, path, body, auth="update-token abc"), 403)
    # Nothing above changed the stack.
    assert api.stack(st)["version"] == 0


def test_token_scheme_is_case_insensitive(api):
    assert_ok(api.get("/api/user", auth="Token " + api.server.token))


def test_head_project(api):
    st = api.new_stack()
    r = api.call("HEAD", "/api/stacks/%s/%s" % (st.org, st.project))
    assert r.status == 200 and r.raw == b""
    r = api.call("HEAD", "/api/stacks/%s/%s" % (st.org, uid("noproj")))
    assert_error(r, 404, method="HEAD")
    assert r.raw == b""
    assert_error(api.call("HEAD", "/api/stacks/ab/%s" % st.project), 400, method="HEAD")
    assert_error(api.call("HEAD", "/api/stacks/%s/%s" % (st.org, st.project), token=False), 401, method="HEAD")
    # The project disappears with its last stack.
    assert_ok(api.call("DELETE", st.path + "?force=false"))
    assert_error(api.call("HEAD", "/api/stacks/%s/%s" % (st.org, st.project)), 404, method="HEAD")


def _list(api, query):
    return assert_ok(api.get("/api/user/stacks" + query))


def _list_all(api, query, page_size=None):
    """Follow continuationToken; returns (stacks, pages)."""
    seen, pages, tok = [], 0, None
    while True:
        q = [query] if query else []
        if page_size:
            q.append("pageSize=%d" % page_size)
        if tok is not None:
            q.append("continuationToken=" + tok)
        r = _list(api, "?" + "&".join(q) if q else "")
        pages += 1
        assert "continuationToken" in r
        if page_size:
            assert len(r["stacks"]) <= page_size
        seen += r["stacks"]
        tok = r["continuationToken"]
        if tok is None:
            return seen, pages
        assert isinstance(tok, str) and tok
        assert pages < 10000


def _names(stacks):
    return [(s["orgName"], s["projectName"], s["stackName"]) for s in stacks]


@pytest.fixture(scope="module")
def listing(api):
    """Two orgs, two projects, tags: a, b in org1/projA; c in org1/projB; d, e in org2/projA."""
    org1, org2 = uid("org"), uid("org")
    pa, pb = uid("pa"), uid("pb")
    tag = "team-" + uid("t")
    made = {
        "a": api.new_stack(pa, org1, tags={tag: "red", "pulumi:project": pa}),
        "b": api.new_stack(pa, org1, tags={tag: "blue"}),
        "c": api.new_stack(pb, org1, tags={tag: "red"}),
        "d": api.new_stack(pa, org2),
        "e": api.new_stack(pa, org2, tags={"other": "x"}),
    }
    return {"org1": org1, "org2": org2, "pa": pa, "pb": pb, "tag": tag, "stacks": made}


def _key(st):
    return (st.org, st.project, st.name)


def test_list_shape(api, listing):
    st = listing["stacks"]["a"]
    api.run_update(st, small_state(st, n=2))
    r = _list(api, "?organization=%s&project=%s" % (st.org, st.project))
    assert r["continuationToken"] is None
    got = {(s["orgName"], s["projectName"], s["stackName"]): s for s in r["stacks"]}
    assert set(got) == {_key(listing["stacks"]["a"]), _key(listing["stacks"]["b"])}
    a = got[_key(st)]
    assert isinstance(a["id"], str) and a["id"]
    assert a["resourceCount"] == 4
    assert isinstance(a["lastUpdate"], int) and a["lastUpdate"] > 0
    b = got[_key(listing["stacks"]["b"])]
    assert b.get("resourceCount", 0) == 0 and "lastUpdate" not in b


def test_list_filters(api, listing):
    s = listing["stacks"]
    org1, org2, pa, pb, tag = listing["org1"], listing["org2"], listing["pa"], listing["pb"], listing["tag"]
    assert set(_names(_list(api, "?organization=" + org1)["stacks"])) == {_key(s[k]) for k in "abc"}
    assert set(_names(_list(api, "?organization=" + org2)["stacks"])) == {_key(s[k]) for k in "de"}
    # project alone spans organizations (pa exists in both)
    assert set(_names(_list(api, "?project=" + pa)["stacks"])) == {_key(s[k]) for k in "abde"}
    assert set(_names(_list(api, "?project=" + pb)["stacks"])) == {_key(s["c"])}
    assert set(_names(_list(api, "?project=%s&organization=%s" % (pa, org2))["stacks"])) == {_key(s[k]) for k in "de"}
    assert set(_names(_list(api, "?tagName=" + tag)["stacks"])) == {_key(s[k]) for k in "abc"}
    assert set(_names(_list(api, "?tagName=%s&tagValue=red" % tag)["stacks"])) == {_key(s[k]) for k in "ac"}
    assert set(_names(_list(api, "?tagName=%s&tagValue=blue&organization=%s" % (tag, org1))["stacks"])) == \
        {_key(s["b"])}
    assert _list(api, "?tagName=%s&tagValue=green" % tag)["stacks"] == []
    assert _list(api, "?organization=" + uid("none"))["stacks"] == []
    # Tag names with a colon and URL escaping in the value.
    assert set(_names(_list(api, "?tagName=pulumi%%3Aproject&tagValue=%s" % pa)["stacks"])) >= {_key(s["a"])}


def test_list_pagination_within_a_filter(api, listing):
    org1 = listing["org1"]
    stacks, pages = _list_all(api, "organization=" + org1, page_size=2)
    assert pages == 2
    assert sorted(_names(stacks)) == sorted(_key(listing["stacks"][k]) for k in "abc")


def test_list_pagination_sees_every_stack_once(api, pg, listing):
    stacks, pages = _list_all(api, "", page_size=2)
    names = _names(stacks)
    assert len(names) == len(set(names)), "a stack was listed twice"
    total = int(pg.psql("SELECT count(*) FROM extension_pulumi_state_stacks")[0][0])
    assert len(names) == total
    assert pages >= total // 2
    for st in listing["stacks"].values():
        assert _key(st) in names
    # Stack names are valid for the CLI (it asserts on them).
    for s in stacks:
        assert s["projectName"] and s["stackName"]


def test_list_errors(api):
    for q in ["pageSize=0", "pageSize=-1", "pageSize=abc", "pageSize=100000", "continuationToken=zz",
              "continuationToken=abc", "continuationToken=%00", "project=a%2Fb", "project=..", "organization=a",
              "organization=a%20bc"]:
        r = api.get("/api/user/stacks?" + q)
        assert r.status == 400, (q, r.raw)
    # A forged token that decodes to names that are not valid is refused, not passed to the database.
    forged = "2e2e1f2e2e1f2e2e"  # "..\x1f..\x1f.."
    assert_error(api.get("/api/user/stacks?continuationToken=" + forged), 400)


def test_list_continuation_token_is_url_safe(api, listing):
    r = _list(api, "?organization=%s&pageSize=1" % listing["org1"])
    tok = r["continuationToken"]
    assert tok and all(ch.isalnum() or ch in "-_.~" for ch in tok)


def test_list_empty_state_stack_counts_zero(api):
    st = api.new_stack(state={"version": 3, "deployment": deployment(None)})
    r = _list(api, "?project=" + st.project)
    assert [x.get("resourceCount", 0) for x in r["stacks"]] == [0]
