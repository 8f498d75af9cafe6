"""WorkflowBuilder validation, the immutable Workflow, connections and templates (no database)."""

import pytest

from dataflow.errors import WorkflowError
from dataflow.nodes import registry
from dataflow.nodes.base import Node, Param
from dataflow.workflow import LocalRuntime, RunResult, Workflow, WorkflowBuilder
from dataflow.workflow.templates import compile_value

OWNER = "test_workflow_builder"


class Echo(Node):
    """Returns its parameters."""

    async def run(self, ctx, **params):
        return dict(params)


class Emit(Node):
    parameters = {"payload": Param(object, default=None)}

    async def run(self, ctx, payload):
        return {"records": [{"id": 7, "email": "a@x.io"}, {"id": 8}], "record": {"email": "b@x.io"},
                "count": 2, "payload": payload, "dotted.key": "exact"}


class Strict(Node):
    strict = True
    parameters = {"id": Param(int, required=True)}

    async def run(self, ctx, id):
        return {"id": id}


@pytest.fixture(autouse=True, scope="module")
def _registered():
    registry.register(Echo, "WfEchoNode", owner=OWNER)
    registry.register(Emit, "WfEmitNode", owner=OWNER)
    yield
    registry.unregister_owner(OWNER)


def run(wf, params=None):
    return LocalRuntime().execute(wf, parameters=params)


# -- add_node -------------------------------------------------------------------------------
def test_add_node_by_name_class_and_instance_returns_id():
    wf = WorkflowBuilder()
    assert wf.add_node("WfEchoNode", "a", {"x": 1}) == "a"
    assert wf.add_node(Echo, "b", x=2) == "b"
    assert wf.add_node(Echo(config_value=3), "c", {"y": 4}) == "c"
    assert wf.add_node("d", Echo, x=5) == "d"  # Kailash legacy argument order
    results, _ = run(wf.build())
    assert results == {"a": {"x": 1}, "b": {"x": 2}, "c": {"config_value": 3, "y": 4}, "d": {"x": 5}}


def test_params_and_kwargs_merge_kwargs_win():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", {"x": 1, "y": 1}, y=2)
    assert run(wf)["a"] == {"x": 1, "y": 2}


def test_duplicate_id_rejected():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a")
    with pytest.raises(WorkflowError, match="duplicate node id 'a'"):
        wf.add_node(Echo, "a")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_node_id_must_be_non_empty_str(bad):
    with pytest.raises(WorkflowError, match="non-empty string"):
        WorkflowBuilder().add_node(Echo, bad)


def test_unknown_type_did_you_mean():
    with pytest.raises(WorkflowError, match="did you mean WfEchoNode"):
        WorkflowBuilder().add_node("WfEchNode", "a", {})


def test_non_node_class_and_bad_params_rejected():
    with pytest.raises(WorkflowError, match="not a dataflow Node"):
        WorkflowBuilder().add_node(dict, "a")
    with pytest.raises(WorkflowError, match="must be a dict"):
        WorkflowBuilder().add_node(Echo, "a", [1, 2])


def test_db_instance_param_picks_owner():
    class Other(Node):
        async def run(self, ctx, **p):
            return {"who": "other"}
    registry.register(Other, "WfEchoNode", owner=OWNER + "_other")
    try:
        wf = WorkflowBuilder()
        wf.add_node("WfEchoNode", "mine", {"db_instance": OWNER})
        wf.add_node("WfEchoNode", "theirs", {"db_instance": OWNER + "_other"})
        r = run(wf)
        assert r["mine"] == {"db_instance": OWNER}
        assert r["theirs"] == {"who": "other"}
    finally:
        registry.unregister_owner(OWNER + "_other")


# -- connections ----------------------------------------------------------------------------
def test_unknown_endpoints_rejected_with_hint():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a")
    wf.add_node(Echo, "b")
    with pytest.raises(WorkflowError, match="unknown target node 'zz'"):
        wf.add_connection("a", "x", "zz", "y")
    with pytest.raises(WorkflowError, match="unknown source node 'zz'"):
        wf.add_connection("zz", "x", "a", "y")
    with pytest.raises(WorkflowError, match=r"did you mean add_connection\('a', 'out', 'b', 'in'\)"):
        wf.add_connection("a", "b", "out", "in")  # old (from, to, out, in) order


def test_cycles_and_self_loops_rejected():
    wf = WorkflowBuilder()
    for n in "abc":
        wf.add_node(Echo, n)
    wf.add_connection("a", "x", "b", "x")
    wf.add_connection("b", "x", "c", "x")
    with pytest.raises(WorkflowError, match="cycle"):
        wf.add_connection("c", "x", "a", "y")
    with pytest.raises(WorkflowError, match="itself"):
        wf.add_connection("a", "x", "a", "y")
    wf.build()  # the refused connection left the builder consistent


def test_one_connection_per_input_and_strict_target_checked():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a")
    wf.add_node(Echo, "b")
    wf.add_node(Strict, "s")
    wf.add_connection("a", "x", "b", "x")
    with pytest.raises(WorkflowError, match="already fed"):
        wf.add_connection("a", "y", "b", "x")
    with pytest.raises(WorkflowError, match="has no parameter 'nope'; valid parameters: id"):
        wf.add_connection("a", "x", "s", "nope")
    with pytest.raises(WorkflowError, match="non-empty"):
        wf.add_connection("a", "", "b", "y")


def test_dotted_paths_and_list_indexes():
    wf = WorkflowBuilder()
    wf.add_node("WfEmitNode", "src")
    wf.add_node(Echo, "dst")
    wf.add_connection("src", "records.0.id", "dst", "first_id")
    wf.add_connection("src", "records.-1.id", "dst", "last_id")
    wf.add_connection("src", "record.email", "dst", "email")
    wf.add_connection("src", "dotted.key", "dst", "exact")
    wf.add_connection("src", "count", "dst", "filter.count")
    wf.add_connection("src", "*", "dst", "whole")
    r = run(wf)
    assert r["dst"]["first_id"] == 7 and r["dst"]["last_id"] == 8
    assert r["dst"]["email"] == "b@x.io" and r["dst"]["exact"] == "exact"
    assert r["dst"]["filter"] == {"count": 2}
    assert r["dst"]["whole"] is r["src"]


def test_nested_to_input_does_not_mutate_static_params():
    wf = WorkflowBuilder()
    wf.add_node("WfEmitNode", "src")
    wf.add_node(Echo, "dst", {"filter": {"active": True}})
    wf.add_connection("src", "count", "dst", "filter.count")
    built = wf.build()
    assert run(built)["dst"]["filter"] == {"active": True, "count": 2}
    assert dict(built.nodes["dst"].params) == {"filter": {"active": True}}


def test_missing_path_names_connection():
    from dataflow.errors import NodeExecutionError
    wf = WorkflowBuilder()
    wf.add_node("WfEmitNode", "src")
    wf.add_node(Echo, "dst")
    wf.add_connection("src", "records.5.id", "dst", "x")
    with pytest.raises(NodeExecutionError, match=r"src.records.5.id -> dst.x") as ei:
        run(wf)
    assert ei.value.node_id == "dst"
    assert isinstance(ei.value.cause, WorkflowError)


def test_connect_mapping_and_default_spread():
    wf = WorkflowBuilder()
    wf.add_node("WfEmitNode", "src")
    wf.add_node(Echo, "m")
    wf.add_node(Echo, "spread")
    wf.connect("src", "m", mapping={"count": "n", "record.email": "email"})
    wf.connect("src", "spread")
    r = run(wf)
    assert r["m"] == {"n": 2, "email": "b@x.io"}
    assert r["spread"]["count"] == 2 and r["spread"]["records"][0]["id"] == 7


# -- templates ------------------------------------------------------------------------------
def test_templates_keep_type_and_interpolate_recursively():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", {
        "limit": "{limit}", "ids": "${ids}", "greeting": "hello ${name}, you are ${age}",
        "filter": {"name": "${name}", "tags": ["${tag}", "fixed"], "pair": ("{age}", 1)},
        "json": '{"a": 1}', "two": "{a} and {b}", "plain": "{not an identifier}", "dotted": "{a.b}",
    })
    ids = [1, 2]
    r = run(wf, {"limit": 10, "ids": ids, "name": "Bob", "age": 42, "tag": "t"})
    a = r["a"]
    assert a["limit"] == 10 and a["ids"] is ids
    assert a["greeting"] == "hello Bob, you are 42"
    assert a["filter"] == {"name": "Bob", "tags": ["t", "fixed"], "pair": (42, 1)}
    assert a["json"] == '{"a": 1}' and a["two"] == "{a} and {b}"
    assert a["plain"] == "{not an identifier}" and a["dotted"] == "{a.b}"


def test_template_missing_input_names_input_and_node():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "find", {"filter": {"name": "${user_name}"}})
    with pytest.raises(WorkflowError, match="node 'find'.*'user_name'"):
        run(wf)


def test_template_overridden_by_connection_or_scoped_input_needs_no_input():
    wf = WorkflowBuilder()
    wf.add_node("WfEmitNode", "src")
    wf.add_node(Echo, "dst", {"x": "${x}", "y": "${y}"})
    wf.add_connection("src", "count", "dst", "x")
    assert run(wf, {"dst": {"y": 5}})["dst"] == {"x": 2, "y": 5}


def test_templates_precomputed_only_where_present():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "plain", {"a": 1, "b": "{x} text", "c": {"d": [1]}})
    wf.add_node(Echo, "tpl", {"a": "${x}"})
    built = wf.build()
    assert not built.nodes["plain"].templates
    assert set(built.nodes["tpl"].templates) == {"a"}
    assert built.template_inputs == {"x"}
    assert compile_value("no braces", set()) is None


# -- immutability ---------------------------------------------------------------------------
def test_built_workflow_is_immutable_and_independent_of_builder():
    params = {"nested": {"k": [1]}}
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", params)
    first = wf.build()
    params["nested"]["k"].append(2)
    wf.add_node(Echo, "b")
    second = wf.build()
    assert first is not second
    assert list(first.nodes) == ["a"] and list(second.nodes) == ["a", "b"]
    assert first.nodes["a"].params["nested"] == {"k": [1]}
    with pytest.raises(AttributeError):
        first.order = ()
    with pytest.raises(TypeError):
        first.nodes["zz"] = None
    with pytest.raises(TypeError):
        first.nodes["a"].params["x"] = 1
    assert first.build() is first


def test_topological_order_and_dependencies():
    wf = WorkflowBuilder()
    for n in ["d", "c", "b", "a"]:
        wf.add_node(Echo, n)
    wf.add_connection("a", "x", "b", "x")
    wf.add_connection("b", "x", "c", "x")
    wf.add_connection("a", "x", "d", "x")
    built = wf.build()
    order = list(built.order)
    assert order.index("a") < order.index("b") < order.index("c")
    assert order.index("a") < order.index("d")
    assert built.nodes["c"].dependencies == {"b"}
    assert isinstance(built, Workflow) and len(built) == 4 and "a" in built


def test_execute_accepts_builder_and_rebuilds_after_edit():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "a", x=1)
    assert run(wf)["a"] == {"x": 1}
    wf.add_node(Echo, "b", x=2)
    r = run(wf)
    assert isinstance(r, RunResult) and set(r.keys()) == {"a", "b"}


def test_execute_rejects_other_objects():
    with pytest.raises(WorkflowError, match="takes a Workflow"):
        run({"a": 1})


# -- property: text that is not a template is never touched ------------------------------------
from hypothesis import given, strategies as st  # noqa: E402


@given(st.text(alphabet=st.sampled_from(list("ab {}$_.1\"':")), max_size=30))
def test_non_templates_untouched(text):
    import re
    is_exact = re.fullmatch(r"\$?\{[A-Za-z_][A-Za-z0-9_]*\}", text) is not None
    has_inner = re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", text) is not None
    names = set()
    renderer = compile_value(text, names)
    assert (renderer is None) == (not is_exact and not has_inner)
    if renderer is not None:
        values = {n: f"<{n}>" for n in names}
        out = renderer(values)
        if is_exact:
            assert out == f"<{text.strip('${}')}>"
        else:
            assert out == re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: f"<{m.group(1)}>", text)


# -- a node name defined by several DataFlow instances ------------------------------------------
def _user_db(name):
    from dataflow import DataFlow

    db = DataFlow(":memory:", name=name)

    @db.model
    class WfTwinUser:
        name: str
    return db


def test_name_defined_by_two_open_instances_needs_db_instance():
    import gc

    a, b = _user_db("twin_a"), _user_db("twin_b")
    try:
        wf = WorkflowBuilder()
        with pytest.raises(WorkflowError, match=r"twin_a.*twin_b.*db_instance") as info:
            wf.add_node("WfTwinUserCreateNode", "c", {"name": "x"})
        assert "2 open DataFlow instances" in str(info.value)
        # explicit choice works, by name or by instance
        wf.add_node("WfTwinUserCreateNode", "ca", {"name": "x", "db_instance": "twin_a"})
        wf.add_node("WfTwinUserCreateNode", "cb", {"name": "y", "db_instance": b})
        r = LocalRuntime().execute(wf)
        assert r["ca"]["name"] == "x" and r["cb"]["name"] == "y"
        assert a.express_sync.count("WfTwinUser") == 1 and b.express_sync.count("WfTwinUser") == 1
        # a closed instance no longer counts: the name is the open one's
        b.close()
        wf2 = WorkflowBuilder()
        wf2.add_node("WfTwinUserCreateNode", "c", {"name": "z"})
        LocalRuntime().execute(wf2)
        assert a.express_sync.count("WfTwinUser") == 2
        # nor does one nobody references any more (never closed, only dropped)
        c = _user_db("twin_c")
        del c
        wf3 = WorkflowBuilder()
        wf3.add_node("WfTwinUserCreateNode", "c", {"name": "w"})
        LocalRuntime().execute(wf3)
        assert a.express_sync.count("WfTwinUser") == 3
    finally:
        a.close()
        b.close()
        gc.collect()


def test_name_defined_by_one_instance_resolves_without_db_instance():
    a = _user_db("solo_a")
    try:
        wf = WorkflowBuilder()
        wf.add_node("WfTwinUserCreateNode", "c", {"name": "x"})
        assert LocalRuntime().execute(wf)["c"]["name"] == "x"
    finally:
        a.close()


def test_node_scoped_inputs_fill_that_nodes_templates():
    wf = WorkflowBuilder()
    wf.add_node(Echo, "greet", {"text": "hi ${who}", "exact": "{who}", "nested": {"n": ["${who}"]}})
    wf.add_node(Echo, "other", {"text": "bye ${who}"})
    r = run(wf, {"greet": {"who": "Ann"}, "other": {"who": 7}})
    # filled from the node's own scope; the name is a template input, not a parameter
    assert r["greet"] == {"text": "hi Ann", "exact": "Ann", "nested": {"n": ["Ann"]}}
    assert r["other"] == {"text": "bye 7"}
    # a node's scope wins over a flat input of the same name, for that node only
    r = run(wf, {"who": "flat", "greet": {"who": "Ann"}})
    assert r["greet"]["exact"] == "Ann" and r["other"]["text"] == "bye flat"
    # still missing for a node whose scope does not give it
    with pytest.raises(WorkflowError, match="node 'other'.*'who'"):
        run(wf, {"greet": {"who": "Ann"}})


def test_node_scoped_template_input_reaches_a_model_node():
    a = _user_db("scoped_tpl")
    try:
        a.express_sync.create("WfTwinUser", {"name": "Ann"})
        a.express_sync.create("WfTwinUser", {"name": "Bob"})
        wf = WorkflowBuilder()
        wf.add_node("WfTwinUserListNode", "q", {"filter": {"name": "${who}"}})
        r = LocalRuntime().execute(wf, parameters={"q": {"who": "Bob"}})
        assert [row["name"] for row in r["q"]["records"]] == ["Bob"]
    finally:
        a.close()
