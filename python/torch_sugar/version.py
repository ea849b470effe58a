# The one place the version is written: setup.py, CMakeLists.txt and the C++ library read it.
__version__ = "0.1.0"
