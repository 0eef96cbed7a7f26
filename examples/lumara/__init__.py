"""Lumara: a simulated south-pole Moon landing domain for Orchestra (terrain, lander, tools, offline policies)."""
