*** Comments ***
Renode Robot test for users who have Renode: boots the firmware on an
emulated STM32L4 Cortex-M4 (nucleo-l4r5zi.resc) and waits for the ready line.
Renode cannot be installed where this toolkit is developed; the same checks
run on QEMU in tests/test_firmware.py.

*** Settings ***
Suite Setup       Setup
Suite Teardown    Teardown
Resource          ${RENODEKEYWORDS}

*** Variables ***
${ELF}            ${CURDIR}/../../build/nucleo-l4r5zi/firmware.elf

*** Test Cases ***
Boots And Prints The Ready Line
    Execute Command    set bin @${ELF}
    Execute Command    include @${CURDIR}/nucleo-l4r5zi.resc
    Create Terminal Tester    sysbus.lpuart1
    Wait For Line On Uart     EMBBERT READY protocol=1    timeout=10
