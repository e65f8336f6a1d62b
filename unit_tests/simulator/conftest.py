import pytest
import requests

from circleci_simulator import Simulator, SimulatorSettings


class Client:
    def __init__(self, sim):
        self.sim = sim
        self.s = requests.Session()
        self.s.headers["Circle-Token"] = sim.token

    def get(self, path, **params):
        return self.s.get(self.sim.base_url + path, params=params or None, timeout=10)

    def all_items(self, path, **params):
        items, token, pages = [], None, 0
        while True:
            p = dict(params)
            if token:
                p["page-token"] = token
            r = self.get(path, **p)
            assert r.status_code == 200, (path, r.status_code, r.text)
            body = r.json()
            items.extend(body["items"])
            pages += 1
            token = body.get("next_page_token")
            if not token:
                return items, pages


@pytest.fixture(scope="module")
def sim():
    with Simulator(SimulatorSettings.preset("tiny")) as s:
        yield s


@pytest.fixture
def fresh_sim():
    with Simulator(SimulatorSettings.preset("tiny")) as s:
        yield s


@pytest.fixture
def client(sim):
    return Client(sim)
