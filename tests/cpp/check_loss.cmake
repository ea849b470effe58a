# Runs a program and checks that the loss it prints went down.
#
#   cmake -DPROGRAM=<exe> [-DARGS=a;b] -DPATTERN=<regex> [-DMAX_PERCENT=<n>] -P check_loss.cmake
#
# PATTERN matches one printed loss per match, the loss written with six decimals as its two
# groups, e.g. "loss ([0-9]+)\\.([0-9][0-9][0-9][0-9][0-9][0-9])". Passes when the program exits
# with 0, prints at least two losses, and the last is below MAX_PERCENT % of the first (default
# 100: strictly lower). Integer arithmetic in micro-units, as CMake has no floating point.
if(NOT DEFINED MAX_PERCENT)
  set(MAX_PERCENT 100)
endif()
execute_process(COMMAND "${PROGRAM}" ${ARGS} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_loss: ${PROGRAM} failed (exit status ${rc})")
endif()
string(REGEX MATCHALL "${PATTERN}" matches "${out}")
list(LENGTH matches count)
if(count LESS 2)
  message(FATAL_ERROR "check_loss: expected at least two losses matching '${PATTERN}', found ${count}")
endif()
set(micro "")
foreach(m IN LISTS matches)
  string(REGEX REPLACE "${PATTERN}" "\\1" int_part "${m}")
  string(REGEX REPLACE "${PATTERN}" "\\2" frac_part "${m}")
  # "1${frac_part}" - 1000000: the six decimals as a number, leading zeros and all.
  math(EXPR v "${int_part} * 1000000 + 1${frac_part} - 1000000")
  list(APPEND micro "${v}")
endforeach()
list(GET micro 0 first)
list(GET micro -1 last)
math(EXPR lhs "${last} * 100")
math(EXPR rhs "${first} * ${MAX_PERCENT}")
if(NOT lhs LESS rhs)
  message(FATAL_ERROR "check_loss: the loss did not go down enough: first ${first}e-6, last ${last}e-6 "
                      "(want last < ${MAX_PERCENT}% of first)")
endif()
message("check_loss: loss ${first}e-6 -> ${last}e-6 over ${count} values (want < ${MAX_PERCENT}% of the first): ok")
