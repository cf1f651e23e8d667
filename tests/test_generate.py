"""netconform generate: labs of any size on any scheme, validated like a file."""

import pytest

from netconform.cli import main
from netconform.schemes import SCHEMES
from netconform.topology import TopologyError, load
from netconform.topology.generate import generate


@pytest.mark.parametrize("scheme", sorted(set(SCHEMES) - {"overlay"}))
def test_250_containers_on_5_hosts_load_on_every_scheme(scheme, tmp_path):
    text, topo = generate(5, 250, scheme)
    assert len(topo.hosts) == 5 and len(topo.containers) == 250
    assert {len(topo.containers_on(h.name)) for h in topo.hosts} == {50}
    path = tmp_path / "g.yaml"
    path.write_text(text)
    assert load(path).containers == topo.containers  # the text is the topology


def test_overlay_refuses_more_containers_than_its_network_holds():
    with pytest.raises(TopologyError) as caught:
        generate(5, 250, "overlay")
    assert str(caught.value) == (
        "netconform generate (overlay-5x250): containers: 250 containers in mode 'bridge' join the "
        "overlay network 10.20.0.0/24, which has room for 248 on 5 hosts (one load-balancer address "
        "each); allowed: at most 248")
    assert len(generate(5, 248, "overlay")[1].containers) == 248


def test_generate_command_names_what_is_wrong(capsys, tmp_path):
    assert main(["generate", "--hosts", "2", "--containers", "3", "--scheme", "nope"]) == 2
    assert capsys.readouterr().err == ("generate: --scheme: 'nope' is not a scheme; allowed: "
                                       f"{', '.join(SCHEMES)}\n")
    out = tmp_path / "lab.yaml"
    assert main(["generate", "--hosts", "2", "--containers", "3", "--scheme", "vxlan", "-o", str(out)]) == 0
    assert [c.host for c in load(out).containers] == ["h1", "h2", "h1"]
