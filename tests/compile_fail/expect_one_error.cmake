# Compiles SOURCE (cmake -P with -DCOMPILER= -DSOURCE= -DFLAGS="a;b" -DREGEX="r1;r2") and passes
# when the compiler fails with exactly one error and its output matches every regex in REGEX: a
# readable message and no cascade after it.
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only ${FLAGS} ${SOURCE} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(APPEND out "${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(REGEX MATCHALL "(^|\n)[^\n]*error:" errors "${out}")
list(LENGTH errors count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected exactly one error, got ${count}:\n${out}")
endif()
foreach(regex IN LISTS REGEX)
  if(NOT out MATCHES "${regex}")
    message(FATAL_ERROR "the output does not match '${regex}':\n${out}")
  endif()
endforeach()
message(STATUS "one error, as expected")
