// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";
import {OrderHashing} from "./utils/OrderHashing.sol";
import {Orders} from "../src/libs/Orders.sol";

/// @notice EIP-712: type hashes, domain and order digests are those of iExec PoCo v5
/// (protocol.md §1.6), computed here independently of the contracts' hashing library.
contract EIP712Test is PocoFixture {
    function test_orderTypehashesEqualProtocolValues() public pure {
        assertEq(
            Orders.APPORDER_TYPEHASH,
            0x60815a0eeec47dddf1615fe53b31d016c31444e01b9d796db365443a6445d008
        );
        assertEq(
            Orders.DATASETORDER_TYPEHASH,
            0x6cfc932a5a3d22c4359295b9f433edff52b60703fa47690a04a83e40933dd47c
        );
        assertEq(
            Orders.WORKERPOOLORDER_TYPEHASH,
            0xaa3429fb281b34691803133d3d978a75bb77c617ed6bc9aa162b9b30920022bb
        );
        assertEq(
            Orders.REQUESTORDER_TYPEHASH,
            0xf24e853034a3a450aba845a82914fbb564ad85accca6cf62be112a154520fae0
        );
        assertEq(
            Orders.EIP712DOMAIN_TYPEHASH,
            0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f
        );
    }

    function test_typeStringsHashToProtocolValues() public pure {
        assertEq(keccak256(bytes(OrderHashing.APPORDER_TYPE)), OrderHashing.APPORDER_TYPEHASH);
        assertEq(
            keccak256(bytes(OrderHashing.DATASETORDER_TYPE)), OrderHashing.DATASETORDER_TYPEHASH
        );
        assertEq(
            keccak256(bytes(OrderHashing.WORKERPOOLORDER_TYPE)),
            OrderHashing.WORKERPOOLORDER_TYPEHASH
        );
        assertEq(
            keccak256(bytes(OrderHashing.REQUESTORDER_TYPE)), OrderHashing.REQUESTORDER_TYPEHASH
        );
        assertEq(
            keccak256(
                "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
            ),
            OrderHashing.EIP712DOMAIN_TYPEHASH
        );
    }

    function test_operationTypehashes() public pure {
        // protocol.md gives the first and last bytes of each operation type hash.
        _assertAffixes(Orders.APPORDEROPERATION_TYPEHASH, 0x0638bb07, 0x6ee0);
        _assertAffixes(Orders.DATASETORDEROPERATION_TYPEHASH, 0x075eb6f7, 0x65ec);
        _assertAffixes(Orders.WORKERPOOLORDEROPERATION_TYPEHASH, 0x322d980b, 0x4388);
        _assertAffixes(Orders.REQUESTORDEROPERATION_TYPEHASH, 0x0ded7b52, 0x77c7);
        assertEq(Orders.APPORDEROPERATION_TYPEHASH, OrderHashing.appOperationTypehash());
        assertEq(Orders.DATASETORDEROPERATION_TYPEHASH, OrderHashing.datasetOperationTypehash());
        assertEq(
            Orders.WORKERPOOLORDEROPERATION_TYPEHASH, OrderHashing.workerpoolOperationTypehash()
        );
        assertEq(Orders.REQUESTORDEROPERATION_TYPEHASH, OrderHashing.requestOperationTypehash());
    }

    function _assertAffixes(bytes32 value, uint32 first4, uint16 last2) private pure {
        assertEq(uint32(bytes4(value)), first4, "prefix");
        assertEq(uint16(uint256(value)), last2, "suffix");
    }

    function test_domain() public view {
        EIP712Domain memory d = poco.domain();
        assertEq(d.name, "iExecODB");
        assertEq(d.version, "5.0.0");
        assertEq(d.chainId, block.chainid);
        assertEq(d.verifyingContract, address(poco));
        bytes32 expected = keccak256(
            abi.encode(
                OrderHashing.EIP712DOMAIN_TYPEHASH,
                keccak256(bytes(d.name)),
                keccak256(bytes(d.version)),
                d.chainId,
                d.verifyingContract
            )
        );
        assertEq(poco.eip712domainSeparator(), expected);
        assertEq(poco.eip712domainSeparator(), domainSeparator());
    }

    function test_domainFollowsChainId() public {
        vm.chainId(4242);
        EIP712Domain memory d = poco.domain();
        assertEq(d.chainId, 4242);
        assertEq(poco.eip712domainSeparator(), OrderHashing.separator(4242, address(poco)));
        // An order signed for another chain does not verify on this one.
        OrderSet memory s = defaultOrders();
        assertTrue(
            poco.hashAppOrder(s.app)
                != OrderHashing.digest(
                    OrderHashing.separator(31_337, address(poco)), OrderHashing.hash(s.app)
                )
        );
        assertEq(poco.hashAppOrder(s.app), hashApp(s.app));
    }

    function test_orderHashesMatchIndependentComputation() public view {
        OrderSet memory s = defaultOrders();
        s.app.tag = bytes32(uint256(0x13));
        s.app.datasetrestrict = address(0x1234);
        s.app.workerpoolrestrict = address(0x5678);
        s.app.requesterrestrict = address(0x9abc);
        s.dataset.tag = bytes32(uint256(0x3));
        s.dataset.apprestrict = address(0x1);
        s.workerpool.tag = bytes32(uint256(0xff));
        s.workerpool.datasetrestrict = address(0x2);
        s.request.callback = address(0x3);
        s.request.params = "a long params string that spans more than one word of memory, indeed";
        assertEq(poco.hashAppOrder(s.app), hashApp(s.app));
        assertEq(poco.hashDatasetOrder(s.dataset), hashDataset(s.dataset));
        assertEq(poco.hashWorkerpoolOrder(s.workerpool), hashWorkerpool(s.workerpool));
        assertEq(poco.hashRequestOrder(s.request), hashRequest(s.request));

        // The signature is not part of the hash.
        s.app.sign = hex"1234";
        assertEq(poco.hashAppOrder(s.app), hashApp(s.app));
        // Every field is: change one, the hash changes.
        bytes32 before = poco.hashRequestOrder(s.request);
        s.request.params = "other";
        assertTrue(poco.hashRequestOrder(s.request) != before);
    }

    function testFuzz_requestHash(
        uint256 appmaxprice,
        uint256 volume,
        bytes32 tag,
        uint256 trust,
        address callback,
        string memory params,
        bytes32 salt
    ) public view {
        RequestOrder memory r = requestOrder();
        r.appmaxprice = appmaxprice;
        r.volume = volume;
        r.tag = tag;
        r.trust = trust;
        r.callback = callback;
        r.params = params;
        r.salt = salt;
        assertEq(poco.hashRequestOrder(r), hashRequest(r));
    }

    function test_orderHashIsTheKeyOfConsumedAndPresigned() public {
        OrderSet memory s = signedOrders(1, 3);
        (bytes32 dealid,) = matchSet(s);
        assertEq(poco.viewConsumed(hashApp(s.app)), 3);
        assertEq(poco.viewConsumed(hashDataset(s.dataset)), 3);
        assertEq(poco.viewConsumed(hashWorkerpool(s.workerpool)), 3);
        assertEq(poco.viewConsumed(hashRequest(s.request)), 3);
        assertEq(dealid, dealIdOf(hashRequest(s.request), 0));
    }
}
