# cmake -DREADME=README.md -DEXAMPLE=examples/cpp/readme_example.cpp -P check_readme.cmake
# Fails unless the README shows the example file verbatim (so the README's code is code that
# ctest compiles and runs).
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${readme}" "```cpp\n${example}```" at)
if(at EQUAL -1)
  message(FATAL_ERROR "check_readme: ${README} does not show ${EXAMPLE} verbatim in a ```cpp block; "
                      "copy the file into the README's \"From C++\" section")
endif()
message("check_readme: ${README} shows ${EXAMPLE}: ok")
