"""Credentialing fixtures: the committee scene (see credentialing_board.py)."""

import pytest
from credentialing_board import Board, build_board
from shell_personas import Network, Personas


@pytest.fixture
def board(personas: Personas, shell_network: Network) -> Board:
    return build_board(personas, shell_network)
