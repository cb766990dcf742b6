"""py4dstem-ndpd: neural Bragg-disk detection for 4D-STEM, a drop-in backend for py4DSTEM.

Licensed under the GNU Affero General Public License v3 or later (it builds on ultralytics, AGPL-3.0,
and py4DSTEM, GPL-3.0).
"""
__version__ = "0.1.0"
