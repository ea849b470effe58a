# torch_sugar_link_whole(<interface target> <library target> <library file>)
#
# Makes <interface target> link <library target> so that the library is loaded by every program
# that links it, even one that calls none of its functions: its job is the static registration
# of the sugar ops (TORCH_LIBRARY) when it is loaded, and `--as-needed` (the default of many
# toolchains) would drop it from such a program. This is how torch's own CMake targets link
# libtorch_cpu. Shared by the build tree (CMakeLists.txt) and the installed package config.
function(torch_sugar_link_whole iface lib file)
  if(APPLE OR WIN32)
    # ld64 and link.exe keep every shared library they are given.
    target_link_libraries(${iface} INTERFACE ${lib})
  else()
    # The library once between --no-as-needed and --as-needed (for DT_NEEDED), and once as a
    # target (for its usage requirements and the run-time search path).
    target_link_libraries(${iface} INTERFACE "-Wl,--no-as-needed,\"${file}\" -Wl,--as-needed" ${lib})
  endif()
endfunction()
